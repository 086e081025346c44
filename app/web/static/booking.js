// The seed's "Complete Booking Flow" in a browser: availability, hold, a countdown driven by
// the hold's status stream, patient details, confirm. No framework, no build step.
"use strict";
const $ = (id) => document.getElementById(id);
let config, locations = {}, hold = null, stream = null, ticker = null;

async function api(method, path, body) {
  const response = await fetch(config.api + path, {
    method,
    headers: { "Authorization": `Bearer ${config.key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error.message);
  return payload.data;
}

function show(section, visible) { $(section).hidden = !visible; }
function say(text) { $("message").textContent = text; }

// A slot's start as wall-clock date and time where it happens, as POST /holds wants it.
function wallClock(slot) {
  const zone = (locations[slot.location_id] || {}).timezone || config.timezone;
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
    .formatToParts(new Date(slot.start_time));
  const part = (type) => parts.find((p) => p.type === type).value;
  return { date: `${part("year")}-${part("month")}-${part("day")}`,
           start_time: `${part("hour")}:${part("minute")}`, zone };
}

function when(slot) {
  return new Date(slot.start_time).toLocaleString("en-GB", { timeZone: wallClock(slot).zone,
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
}

function describe(slot) {
  return `${when(slot)}, ${slot.clinician_name}, ${slot.is_remote ? "online" : slot.location_name}`;
}

async function findSlots() {
  show("hold-section", false);
  const start = $("week").value;
  const end = new Date(Date.parse(start) + 6 * 86400000).toISOString().slice(0, 10);
  const query = `appointment_type_id=${$("service").value}&start_date=${start}&end_date=${end}`;
  const slots = await api("GET", `/availability?${query}`);
  $("slots").replaceChildren(...slots.slice(0, 60).map((slot) => {
    const button = document.createElement("button");
    button.textContent = describe(slot);
    button.onclick = () => holdSlot(slot).catch((error) => say(error.message));
    const item = document.createElement("li");
    item.append(button);
    return item;
  }));
  if (!slots.length) say("No free times that week; try another.");
  show("slots-section", true);
}

async function holdSlot(slot) {
  const { date, start_time } = wallClock(slot);
  hold = await api("POST", "/holds", { appointment_type_id: $("service").value,
    clinician_id: slot.clinician_id, location_id: slot.location_id, date, start_time });
  say("");
  $("held-slot").textContent = `Held for you: ${describe(slot)}`;
  show("slots-section", false);
  show("hold-section", true);
  follow(hold);
}

// The stream is the truth: every change (extended, confirmed, released, expired) arrives here.
function follow(created) {
  if (stream) stream.close();
  const lifetime = Date.parse(created.expires_at) - Date.parse(created.created_at);
  stream = new EventSource(`${config.api}/holds/${created.id}/events` +
                           `?client_secret=${encodeURIComponent(created.client_secret)}`);
  stream.addEventListener("hold", (message) => {
    hold = { ...hold, ...JSON.parse(message.data) };
    if (hold.status === "active") return;
    stream.close();
    clearInterval(ticker);
    if (hold.status === "expired") ended("Your hold expired and the time was given back.");
    if (hold.status === "released") ended("This hold was released elsewhere.");
  });
  clearInterval(ticker);
  ticker = setInterval(() => tick(lifetime), 250);
  tick(lifetime);
}

function tick(lifetime) {
  const left = Math.max(0, Math.ceil((Date.parse(hold.expires_at) - Date.now()) / 1000));
  const clock = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  $("countdown").textContent = `Complete booking within ${clock}`;
  $("extend").hidden = left * 1000 > Math.min(60000, lifetime / 2);
}

function ended(text) {
  show("hold-section", false);
  say(`${text} Pick another time.`);
  findSlots().catch((error) => say(error.message));
}

async function extend() {
  hold = { ...hold, ...(await api("POST", `/holds/${hold.id}/extend`, {})) };
}

async function confirm(event) {
  event.preventDefault();
  const patient = await api("POST", "/patients", { first_name: $("first-name").value,
    last_name: $("last-name").value, date_of_birth: $("date-of-birth").value,
    email: $("email").value || null });
  const name = `${patient.first_name} ${patient.last_name}`;
  const appointment = await api("POST", `/holds/${hold.id}/confirm`, { patient_id: patient.id,
    attendee_name: name, attendee_email: $("email").value || null });
  stream.close();
  clearInterval(ticker);
  show("hold-section", false);
  $("booked").textContent =
    `${appointment.title}, ${when(appointment)}, for ${name}. Reference ${appointment.id}.`;
  show("booked-section", true);
}

async function start() {
  config = await (await fetch("config.json")).json();
  for (const location of await api("GET", "/locations")) locations[location.id] = location;
  const services = await api("GET", "/appointment-types");
  $("service").replaceChildren(...services.map((service) => new Option(service.name, service.id)));
  const monday = new Date();
  monday.setDate(monday.getDate() + ((8 - monday.getDay()) % 7 || 7));
  $("week").value = monday.toISOString().slice(0, 10);
  $("find").onclick = () => findSlots().catch((error) => say(error.message));
  $("find").disabled = false;  // ready: services and locations are loaded
  $("extend").onclick = () => extend().catch((error) => say(error.message));
  $("details").onsubmit = (event) => confirm(event).catch((error) => say(error.message));
}

start().catch((error) => say(error.message));
