"""HTTP: parse and authorise, call the domain, render the response."""
