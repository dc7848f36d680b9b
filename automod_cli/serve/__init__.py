"""`automod serve`: a local page to add photos and mix, edit, interpolate and sample them with one model.

`studio.py` holds the model and the photos (each encoded once), `views.py` computes what each view shows with the
same `ops` calls as the `automod` command it prints, `guard.py` checks every request (token, Host header, upload
limits) and `app.py` is the Starlette application that serves the page in `static/`.
"""
