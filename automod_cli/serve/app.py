"""The web application of `automod serve` (Starlette): the page, its files, and a small JSON and PNG API.

Every request passes `guard.Guard` first. Bad requests get a 4xx with {"error": one line}; nothing a request sends
stops the server. Model work runs in a worker thread, one request at a time; a view request carries a number, and
one that a newer request of the same view has overtaken is dropped (409) instead of computed.

    GET    /                          the page          GET  /static/{app.js,style.css}
    GET    /api/info                  model, photos     POST /api/photos?name=N    (body: the image file)
    GET    /api/photos/{id}/{input,reconstruction}.png  DELETE /api/photos/{id}
    POST   /api/photos/{id}/face      {"face": N}: align another of the photo's faces
    POST   /api/directions?name=N     (body: a direction file)
    POST   /api/view/{mix,grid,reconstruct,edit,interpolate,frame,sample}   (JSON) -> PNG, headers
           X-Automod-Command (the command, URL-encoded) and X-Automod-Filename
"""

from __future__ import annotations

import json
import math
import secrets
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from automod_cli.errors import AutomodError
from automod_cli.serve import views
from automod_cli.serve.guard import TOKEN_HEADER, Guard
from automod_cli.serve.studio import MAX_UPLOAD_BYTES, NotFound, Photo, Studio, clean_name

STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
MAX_JSON_BYTES = 64 * 1024
MAX_DIRECTION_BYTES = 4 * 1024 * 1024
MAX_DIRECTIONS = 20


class Superseded(Exception):
    """A newer request of the same view arrived: this one is not computed."""


class TooLarge(AutomodError):
    """A body over its limit (HTTP 413)."""


def static_text(name: str) -> str:
    return resources.files("automod_cli.serve").joinpath("static", name).read_text(encoding="utf-8")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the upload is {int(declared) / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the upload is over the limit of {limit / 2**20:.0f} MB.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await read_body(request, MAX_JSON_BYTES) or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AutomodError("the request body is not JSON.") from None
    if not isinstance(body, dict):
        raise AutomodError("the request body must be a JSON object.")
    return body


def photo_json(studio: Studio, photo: Photo) -> dict[str, Any]:
    return {
        "id": photo.id,
        "name": photo.name,
        "errors": photo.errors,
        "unlike": photo.unlike,
        "unaligned": photo.unaligned,
        "face": photo.face,
        "faces": photo.faces,
        "similar": photo.similar,
        "command": views.reconstruction(studio, photo).command,
    }


def png(view: views.View) -> Response:
    headers = {
        "X-Automod-Command": quote(view.command),
        "X-Automod-Filename": view.filename,
        "Cache-Control": "no-store",
    }
    return Response(view.png, media_type="image/png", headers=headers)


class Server:
    """The routes of one studio."""

    def __init__(self, studio: Studio, guard: Guard):
        self.studio = studio
        self.guard = guard
        self.directions: dict[
            str, tuple[str, Path]
        ] = {}  # id -> (name as added, file in the studio's folder)
        self.interpolation: Optional[tuple[tuple, views.Strip]] = None  # the last strip, for the slider

    def routes(self) -> list[Route]:
        return [
            Route("/", self.page),
            Route("/static/{name}", self.static),
            Route("/api/info", self.info),
            Route("/api/photos", self.add_photo, methods=["POST"]),
            Route("/api/photos/{photo_id}", self.remove_photo, methods=["DELETE"]),
            Route("/api/photos/{photo_id}/face", self.choose_face, methods=["POST"]),
            Route("/api/photos/{photo_id}/{which}.png", self.photo_png),
            Route("/api/directions", self.add_direction, methods=["POST"]),
            Route("/api/view/{kind}", self.view, methods=["POST"]),
        ]

    async def page(self, request: Request) -> Response:
        token = quote(self.guard.token)
        page = static_text("index.html").replace("{{token}}", token)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            return error(404, f"no file '{name[:40]}' here.")
        return Response(static_text(name), media_type=STATIC_FILES[name])

    async def info(self, request: Request) -> Response:
        info = self.studio.info()
        return JSONResponse(
            {
                "model": info.__dict__,
                "warning": self.studio.unlike_message(),
                "photos": [photo_json(self.studio, p) for p in self.studio.photos.values()],
                "directions": [{"id": key, "name": name} for key, (name, _) in self.directions.items()],
            }
        )

    async def add_photo(self, request: Request) -> Response:
        data = await read_body(request, MAX_UPLOAD_BYTES)
        name = request.query_params.get("name", "photo.png")
        photo = await run_in_threadpool(self.studio.add, name, data)
        return JSONResponse(
            {"photo": photo_json(self.studio, photo), "warning": self.studio.unlike_message()}
        )

    async def remove_photo(self, request: Request) -> Response:
        self.studio.remove(request.path_params["photo_id"])
        return JSONResponse(
            {"removed": request.path_params["photo_id"], "warning": self.studio.unlike_message()}
        )

    async def choose_face(self, request: Request) -> Response:
        body = await read_json(request)
        photo = await run_in_threadpool(
            self.studio.choose_face, request.path_params["photo_id"], body.get("face")
        )
        return JSONResponse(
            {"photo": photo_json(self.studio, photo), "warning": self.studio.unlike_message()}
        )

    async def photo_png(self, request: Request) -> Response:
        photo = self.studio.photo(request.path_params["photo_id"])
        which = request.path_params["which"]
        if which not in ("input", "reconstruction"):
            return error(404, f"a photo has input.png and reconstruction.png, not {which[:40]}.png.")
        image = photo.image if which == "input" else photo.reconstruction
        return Response(views.png_bytes(image), media_type="image/png", headers={"Cache-Control": "no-store"})

    async def add_direction(self, request: Request) -> Response:
        data = await read_body(request, MAX_DIRECTION_BYTES)
        if len(self.directions) >= MAX_DIRECTIONS:
            raise AutomodError(f"the page holds {MAX_DIRECTIONS} directions already.")
        name = clean_name(request.query_params.get("name", "direction.safetensors"))
        key = secrets.token_hex(6)
        path = self.studio.folder / f"direction-{key}"
        path.write_bytes(data)
        try:
            direction = views.direction_from_file(self.studio, name, path)
        except AutomodError as exc:
            path.unlink(missing_ok=True)
            raise AutomodError(str(exc).replace(f"'{path}'", f"'{name}'")) from None
        self.directions[key] = (name, path)
        return JSONResponse({"id": key, "name": name, "dim": int(direction.vector.numel())})

    async def view(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        compute = getattr(self, f"view_{kind}", None)
        if compute is None:
            return error(
                404, f"no view '{kind[:40]}': mix, grid, reconstruct, edit, interpolate, frame or sample."
            )
        body = await read_json(request)
        number = body.get("request")
        number = number if isinstance(number, int) and not isinstance(number, bool) else None
        view = f"{str(body.get('page', ''))[:40]}:{kind}"  # each open page numbers its own requests
        if not self.studio.fresh(view, number):
            raise Superseded()
        return png(await run_in_threadpool(self.locked, view, number, lambda: compute(body)))

    def locked(self, view: str, number: Optional[int], work: Callable[[], views.View]) -> views.View:
        with self.studio.lock:
            if not self.studio.is_current(view, number):
                raise Superseded()
            return work()

    def photos(self, body: dict, key: str) -> list[Photo]:
        ids = body.get(key)
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise AutomodError(f"'{key}' must be a list of photo ids.")
        return [self.studio.photo(i) for i in ids]

    def one(self, body: dict, key: str) -> Photo:
        if not isinstance(body.get(key), str):
            raise AutomodError(f"pick a photo as {key}: add photos first.")
        return self.studio.photo(body[key])

    def view_mix(self, body: dict) -> views.View:
        return views.mix(
            self.studio, self.one(body, "a"), self.one(body, "b"), body.get("scales") or "coarse"
        )

    def view_grid(self, body: dict) -> views.View:
        return views.mix_grid(
            self.studio, self.photos(body, "rows"), self.photos(body, "cols"), body.get("scales") or "coarse"
        )

    def view_reconstruct(self, body: dict) -> views.View:
        return views.reconstruction(self.studio, self.one(body, "photo"))

    def view_edit(self, body: dict) -> views.View:
        chosen = body.get("direction")
        if isinstance(chosen, str):
            if chosen not in self.directions:
                raise NotFound("no such direction on this page: add the direction file again.")
            name, path = self.directions[chosen]
            direction = views.direction_from_file(self.studio, name, path)
        elif isinstance(chosen, dict):
            direction = views.direction_from_photos(
                self.studio, self.photos(chosen, "pos"), self.photos(chosen, "neg")
            )
        else:
            raise AutomodError(
                "choose a direction: a direction file, or photos with and without the attribute."
            )
        return views.edit(
            self.studio,
            self.one(body, "photo"),
            direction,
            _number(body, "strength", 1.0),
            body.get("scales"),
        )

    def strip(self, body: dict) -> views.Strip:
        a, b = self.one(body, "a"), self.one(body, "b")
        key = (a.id, b.id, int(_number(body, "steps", 8)), body.get("scales") or None)
        if self.interpolation is None or self.interpolation[0] != key:
            self.interpolation = (key, views.interpolation(self.studio, a, b, key[2], key[3]))
        return self.interpolation[1]

    def view_interpolate(self, body: dict) -> views.View:
        return self.strip(body).view

    def view_frame(self, body: dict) -> views.View:
        """One image of the strip (the slider's position); only the strip's first request decodes."""
        strip = self.strip(body)
        k = int(_number(body, "frame", 0))
        if not 0 <= k < len(strip.frames):
            raise AutomodError(f"the strip has frames 0 to {len(strip.frames) - 1}, not {k}.")
        return views.View(strip.frames[k], strip.view.command, strip.view.filename)

    def view_sample(self, body: dict) -> views.View:
        fix = self.one(body, "fix") if body.get("fix") else None
        return views.sample(
            self.studio, int(_number(body, "n", 16)), int(_number(body, "seed", 0)), fix, body.get("scales")
        )


def _number(body: dict, key: str, default: float) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AutomodError(f"'{key}' must be a number.")
    return value


class Guarded:
    """ASGI middleware: every HTTP request passes the guard first, and every error becomes one JSON line."""

    def __init__(self, app, guard: Guard):
        self.app, self.guard = app, guard

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        refused = self.guard.refusal(
            request.headers.get("host"),
            request.headers.get(TOKEN_HEADER) or request.query_params.get("token"),
        )
        if refused is not None:
            await error(*refused)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
            return
        except NotFound as exc:
            response = error(404, str(exc))
        except TooLarge as exc:
            response = error(413, str(exc))
        except AutomodError as exc:
            response = error(400, str(exc))
        except Superseded:
            response = error(409, "superseded by a newer request of the same view.")
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
            response = error(500, f"internal error ({type(exc).__name__}: {str(exc)[:200]}).")
        await response(scope, receive, send)


def create_app(studio: Studio, token: str, bind_host: str = "127.0.0.1") -> Starlette:
    """The application for `studio`, answering only requests with `token` and a Host this server is for; the
    studio's photos are deleted when it shuts down."""
    guard = Guard(token, bind_host)

    @asynccontextmanager
    async def lifespan(app):
        yield
        studio.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, f"nothing at {request.url.path[:60]} on this server.")

    return Starlette(
        routes=Server(studio, guard).routes(),
        middleware=[Middleware(Guarded, guard=guard)],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )
