"""The catalog: its file format, loading it into SQL, and the API's in-process copy."""
