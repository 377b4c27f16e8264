"""`arcaudio serve`: the HTTP API and web page (app.py) around one worker thread that owns the model (worker.py).
Needs the `serve` extra (FastAPI, uvicorn, python-multipart): `pip install 'arcaudio[serve]'`."""

SERVE_HINT = "the server needs FastAPI and uvicorn: pip install 'arcaudio[serve]'"
