"""The photos workload (issue 24): what a 12 MP phone photo costs to take in, and what a
search page's thumbnails cost a phone to download, before and after the variants.

Twenty test photos, made here (deterministic per seed, Pillow only): a 4000x3000 scene of
edges, gradients and textures at several scales, with sensor-like grain and an EXIF block,
saved as a JPEG at quality 90 (3.7-3.9 MB, as a phone's; under MAX_UPLOAD_BYTES). Then:

  * in process, for a few of them: `images.clean` (decode whole, encode again without the
    metadata), `images.variants` (the three WebP copies) and the local storage's `put`
    alone, so the figures below can be read as where the time goes;
  * over HTTP, against the running API: POST /api/products/{id}/photos/ (multipart `file`) as
    the listing's host, 10 photos one at a time, then 10 by 2 clients at once (after one
    warm-up upload): photos/s and the median per photo; and 5 uploads of a 320x240 JPEG padded
    with zeros to the photos' size, which decodes in a millisecond: the same request without
    the decode (HTTP, the multipart body, storage, SQL);
  * the worker's job, `api.worker.make_variants`, called for each of the 20 stored photos in
    turn, as one worker runs it (get the original, make 320/960/1920 px WebP, put them,
    record them): photos/s and the median;
  * a search page of 20 thumbnails on a phone: the bytes of the 20 originals (what a search
    result linked before issue 24) against 20 of the 320 px variant and 20 of the 960 px one
    (what a 3x-DPR phone picks from srcset), each fetched from the API's /media/ as a client
    would, from the URLs the listing's JSON gives.

The photos belong to an unpublished listing made for the run (bench host 1, created as the
owner); at the end the listing and its photos are deleted, the deletions' files removed with
the worker's own `delete_media`, and the jobs the media triggers queued for them dropped, so
nothing piles up under the bench API's MEDIA_ROOT (bench/out/media) or in the job queue. A
listing an interrupted run left is removed the same way at the start.

In `make bench` (`--only photos` for it alone), or by itself against the running local
cluster, with an API server of its own: python -m bench.photos [--workers 2] [--no-migrate]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import TypeVar

import psycopg
from PIL import Image, ImageChops, ImageFilter

from api import images, storage, worker
from api.settings import Settings, settings
from bench.data import DBNAME, OUT, RUN, owner_url, superuser_url
from bench.run import MEDIA_ROOT, Server, has_function, http, lift_rate_limits, loadavg, log, sign_tokens

SIZE = (4000, 3000)  # 12 MP, a phone's main camera
QUALITY = 90  # what phones write, about
PHOTOS = 20  # distinct photos: the search page; the first 10 uploaded one at a time, the rest by CLIENTS
CLIENTS = 2
SAMPLE = 5  # photos timed in process (clean, put); variants alone on 3 of them
BARE = 5  # uploads of a tiny JPEG padded to a photo's size: the upload's cost without the decode
HOST = 1  # bench user 1 is a host (bench/data.sql)
LISTING_NAME = "Bench photos (bench/photos.py; removed when the run ends)"
MEDIA_URL = "/media/"  # the bench API's (bench.run.Server)

T = TypeVar("T")


# --------------------------------------------------------------------------------------
# the test photos
# --------------------------------------------------------------------------------------


def noise(rng: random.Random, size: tuple[int, int], sigma: float) -> Image.Image:
    """Grey noise around 128 with about this standard deviation (triangular: the mean of two uniform
    draws), from `rng`: Pillow's effect_noise draws from C's rand(), which no seed fixes."""
    w, h = size
    a = Image.frombytes("L", size, rng.randbytes(w * h))
    b = Image.frombytes("L", size, rng.randbytes(w * h))
    k = sigma / 52.0  # the mean of two uniform bytes has a standard deviation of ~52
    return ImageChops.add(a, b, scale=2.0).point([max(0, min(255, round(128 + (v - 128) * k))) for v in range(256)])


def test_photo(seed: int, size: tuple[int, int] = SIZE, grain: float = 9.0) -> bytes:
    """A phone-like JPEG: a scene of sharp edges (a Mandelbrot set's rim), light (a rotated gradient,
    a vignette) and texture at three scales (octaves of noise, as foliage, walls, fabric), drawn at a
    quarter of the size and enlarged, as a lens and demosaicing leave it soft; then the sensor's grain
    at full size, and an EXIF block (make, model, date) for `images.clean` to drop."""
    rng = random.Random(seed)
    w, h = size
    sw, sh = w // 4, h // 4
    cx, cy, span = rng.uniform(-0.9, -0.4), rng.uniform(-0.3, 0.3), rng.uniform(0.5, 1.6)
    edges = Image.effect_mandelbrot(
        (sw // 2, sh // 2), (cx - span, cy - span * 0.75, cx + span, cy + span * 0.75), rng.randint(40, 120)
    ).resize((sw, sh), Image.Resampling.BICUBIC)
    light = (
        Image.linear_gradient("L")
        .rotate(rng.uniform(0, 360), Image.Resampling.BICUBIC, fillcolor=rng.randint(60, 200))
        .resize((sw, sh))
    )
    vignette = Image.radial_gradient("L").resize((sw, sh))
    detail = rng.uniform(0.25, 0.6)  # how busy the scene is: its thumbnails' size varies as real ones do
    texture = Image.new("L", (sw, sh), 128)
    for scale, sigma in ((64, 40.0), (16, 30.0), (3, 30.0)):
        octave = noise(rng, (max(2, sw // scale), max(2, sh // scale)), sigma * detail)
        texture = ImageChops.add(texture, octave.resize((sw, sh), Image.Resampling.BICUBIC), 1.0, -128)
    scene = Image.merge(
        "RGB",
        (
            ImageChops.add(edges, light, 2.0),
            ImageChops.blend(light, texture, 0.6),
            ImageChops.blend(vignette, edges, 0.4),
        ),
    )
    scene = ImageChops.add(scene, Image.merge("RGB", (texture, texture, texture)), 1.0, -128)
    photo = scene.filter(ImageFilter.GaussianBlur(0.8)).resize((w, h), Image.Resampling.BILINEAR)
    # The grain: a 1024 px tile of colour noise, repeated (a period JPEG's 8x8 blocks cannot exploit).
    tile = Image.merge("RGB", [noise(rng, (1024, 1024), grain) for _ in range(3)])
    sensor = Image.new("RGB", (w, h))
    for x in range(0, w, tile.width):
        for y in range(0, h, tile.height):
            sensor.paste(tile, (x, y))
    photo = ImageChops.add(photo, sensor, 1.0, -128)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132], exif[0x0112] = "Nexus", "Bench 12MP", "2026:12:06 12:00:00", 1
    out = BytesIO()
    photo.save(out, "JPEG", quality=QUALITY, exif=exif)
    return out.getvalue()


# --------------------------------------------------------------------------------------
# the listing, uploads, the job
# --------------------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A 320x240 JPEG followed by zeros up to `size` bytes: an upload of a photo's size that decodes
    in a millisecond (Pillow stops reading at the image's end; the padding is not stored)."""
    out = BytesIO()
    Image.new("RGB", (320, 240), (96, 128, 64)).save(out, "JPEG", quality=QUALITY)
    return out.getvalue() + bytes(max(0, size - out.tell()))


def worker_settings() -> Settings:
    """The settings the bench API serves photos under, for the worker's tasks run here."""
    return replace(
        settings, database_url=owner_url(), media_storage="local", media_root=MEDIA_ROOT, media_url=MEDIA_URL
    )


def make_listing() -> str:
    """An unpublished listing of bench host HOST, made as the owner (as bench/data.sql writes)."""
    with psycopg.connect(owner_url(), autocommit=True) as conn:
        row = conn.execute(
            "insert into app.products (host_id, category_id, name, description, location, price_per_night,"
            " max_guests, published)"
            " select md5('user:' || %s)::uuid, (select id from app.categories order by slug limit 1), %s,"
            " 'Test photos of the photos workload.', 'Lekki, Lagos, Nigeria', 100, 2, false"
            " returning id::text",
            (HOST, LISTING_NAME),
        ).fetchone()
    assert row is not None
    return str(row[0])


def remove_listings(cfg: Settings) -> int:
    """Delete the workload's listings (this run's, or one an interrupted run left) and their photos,
    then do what the worker would with the media jobs the triggers queued (make_variants at each
    upload, delete now) for paths no photo uses: remove the files (`delete_media`), drop the jobs.
    Only this workload queues media jobs in nexus_bench (bench/data.sql loads with the trigger off).
    Returns how many files were removed."""
    with psycopg.connect(owner_url(), autocommit=True) as conn:
        conn.execute(
            "delete from app.products where name = %s and host_id = md5('user:' || %s)::uuid", (LISTING_NAME, HOST)
        )  # and its photos, by the foreign key's cascade: each row's trigger queues media.delete
        conn.execute("set search_path = procrastinate, pg_catalog")  # procrastinate's triggers name tables bare
        paths = [
            r[0]
            for r in conn.execute(
                "select distinct args ->> 'path' from procrastinate_jobs where queue_name = 'media'"
                " and status = 'todo' and app_private.media_photo(args ->> 'path') is null"
            )
        ]
        removed = 0
        if paths:
            worker.make_app(cfg)
            with worker.opened(cfg):
                for path in paths:
                    outcome = worker.delete_media(path)
                    removed += int(outcome.split()[1]) if outcome.startswith("removed ") else 0
            conn.execute(
                "delete from procrastinate_jobs where queue_name = 'media' and status = 'todo'"
                " and args ->> 'path' = any(%s)",
                (paths,),
            )
    for folder in MEDIA_ROOT.glob("*/"):  # the two-hex-digit folders the removed files leave empty
        with contextlib.suppress(OSError):
            folder.rmdir()
    return removed


def multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the photo in the field `file`, and its content type."""
    boundary = f"nexus-bench-{uuid.uuid4().hex}"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(base: str, token: str, listing: str, data: bytes, filename: str) -> tuple[str, float]:
    """One upload on a connection of its own, as a phone makes it: the stored path, and the seconds it took."""
    body, ctype = multipart(data, filename)
    started = time.perf_counter()
    status, answer = http(
        "POST",
        f"{base}/api/products/{listing}/photos/",
        body,
        {"Content-Type": ctype, "Authorization": f"Bearer {token}"},
    )
    seconds = time.perf_counter() - started
    if status != 201:
        raise RuntimeError(f"POST /api/products/{listing}/photos/ answered {status}: {answer[:300]!r}")
    return str(json.loads(answer)["url"]).removeprefix(MEDIA_URL), seconds


def uploads(
    base: str, token: str, listing: str, photos: list[bytes], clients: int
) -> tuple[list[str], list[float], float]:
    """The photos uploaded by `clients` clients at once, each its share one after another:
    the stored paths, each upload's seconds, and the seconds from the first to the last."""
    shares = [list(range(i, len(photos), clients)) for i in range(clients)]

    def client(share: list[int]) -> list[tuple[int, str, float]]:
        return [(i, *upload(base, token, listing, photos[i], f"IMG_{i:04}.jpg")) for i in share]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = sorted(x for part in pool.map(client, shares) for x in part)
    wall = time.perf_counter() - started
    return [path for _, path, _ in done], [s for _, _, s in done], wall


def timed(items: list[bytes], work: Callable[[bytes], T]) -> tuple[list[T], list[float]]:
    """A call on each item: what each returned, and the seconds each took."""
    results: list[T] = []
    seconds: list[float] = []
    for item in items:
        started = time.perf_counter()
        results.append(work(item))
        seconds.append(time.perf_counter() - started)
    return results, seconds


def ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def kb(n: int) -> str:
    return f"{n / 1000:,.0f}"


# --------------------------------------------------------------------------------------
# the workload
# --------------------------------------------------------------------------------------


def run(base: str) -> list[str]:
    """The photos workload against the API at `base` (serving MEDIA_ROOT under /media/); logs the
    figures as it goes and returns them as markdown for the results file."""
    with psycopg.connect(owner_url()) as conn:
        if not has_function(conn, "api.product_photo_add") or not has_function(conn, "app_private.media_photo"):
            log("\nphotos: not available (no api.product_photo_add / app_private.media_photo in nexus_bench)")
            return ["photos: not available (no api.product_photo_add / app_private.media_photo)"]
    cfg = worker_settings()
    log(f"\n== photos: 12 MP phone JPEGs ({SIZE[0]}x{SIZE[1]}, quality {QUALITY}), load {loadavg()}")
    remove_listings(cfg)  # what an interrupted run left
    started = time.perf_counter()
    photos = [test_photo(seed) for seed in range(PHOTOS)]
    sizes = sorted(len(p) for p in photos)
    if sizes[-1] > settings.max_upload_bytes:
        raise RuntimeError(f"a test photo has {sizes[-1]} bytes, over MAX_UPLOAD_BYTES ({settings.max_upload_bytes})")
    made = time.perf_counter() - started
    size_note = f"{sizes[0] / 1e6:.2f}-{sizes[-1] / 1e6:.2f} MB, median {statistics.median(sizes) / 1e6:.2f} MB"
    log(f"   {PHOTOS} test photos made in {made:.1f} s: {size_note}")

    # In process: where an upload's and a job's time goes.
    images.clean(photos[-1], settings.max_image_pixels)  # Pillow's plugins loaded, its buffers allocated
    cleaned, clean_s = timed(photos[:SAMPLE], lambda p: images.clean(p, settings.max_image_pixels))
    _, variants_s = timed([c.data for c in cleaned[:3]], images.variants)
    media = storage.LocalStorage(MEDIA_ROOT)
    keys = [f"{name[:2]}/{name}.jpg" for name in (uuid.uuid4().hex for _ in cleaned)]
    put_s: list[float] = []
    try:
        for key, c in zip(keys, cleaned, strict=True):
            t = time.perf_counter()
            media.put(key, c.data)
            put_s.append(time.perf_counter() - t)
    finally:
        for key in keys:
            media.delete_photo(key)
    log(
        f"   in process: images.clean (decode + re-encode) p50 {ms(clean_s):6.0f} ms ({1 / statistics.median(clean_s):.1f}"
        f" photos/s); images.variants (3 WebP) p50 {ms(variants_s):6.0f} ms; local storage put p50 {ms(put_s):5.1f} ms"
    )

    listing = make_listing()
    try:
        token = sign_tokens(HOST, HOST, role="host")[0]
        upload(base, token, listing, photos[0], "warm-up.jpg")
        half = PHOTOS // 2
        paths, one_s, one_wall = uploads(base, token, listing, photos[:half], 1)
        more, two_s, two_wall = uploads(base, token, listing, photos[half:], CLIENTS)
        paths += more
        one_rate, two_rate = half / one_wall, (PHOTOS - half) / two_wall
        log(f"   upload, 1 client   {one_rate:6.2f} photos/s  p50 {ms(one_s):6.0f} ms  ({half} photos over HTTP)")
        log(
            f"   upload, {CLIENTS} clients  {two_rate:6.2f} photos/s  p50 {ms(two_s):6.0f} ms"
            f"  ({PHOTOS - half} photos over HTTP)"
        )
        # The same request without the decode: HTTP, the multipart body, storage and SQL alone.
        carrier = padded(int(statistics.median(sizes)))
        _, bare_s, _ = uploads(base, token, listing, [carrier] * BARE, 1)
        log(
            f"   upload without the decode p50 {ms(bare_s):6.0f} ms  ({BARE} uploads of a 320x240 JPEG padded to"
            f" {len(carrier) / 1e6:.2f} MB: HTTP, the multipart body, storage, SQL)"
        )

        worker.make_app(cfg)
        job_s: list[float] = []
        with worker.opened(cfg) as context:
            if context.pool is not None:
                context.pool.wait()
            job_started = time.perf_counter()
            for path in paths:
                t = time.perf_counter()
                outcome = worker.make_variants(path)
                job_s.append(time.perf_counter() - t)
                if not outcome.startswith("listing photo: 3 variants"):
                    raise RuntimeError(f"make_variants({path!r}): {outcome}")
            job_wall = time.perf_counter() - job_started
        job_rate = len(paths) / job_wall
        log(
            f"   variants job       {job_rate:6.2f} photos/s  p50 {ms(job_s):6.0f} ms  ({len(paths)} photos,"
            " make_variants one at a time, as one worker: 320/960/1920 px WebP)"
        )

        page = search_page(base, token, listing, paths)
        log(f"\n== photos: a search page of {PHOTOS} thumbnails, downloaded as a phone would, load {loadavg()}")
        before, small, large = page["original"], page["320"], page["960"]
        log(f"   before: {PHOTOS} originals              {kb(before):>8} kB")
        log(f"   after: {PHOTOS} x 320 px WebP            {kb(small):>8} kB  ({before / small:.0f}x less)")
        log(f"   3x-DPR phone: {PHOTOS} x 960 px WebP     {kb(large):>8} kB  ({before / large:.0f}x less)")
    finally:
        removed = remove_listings(cfg)
        log(f"   cleaned up: the listing and its photos deleted, {removed} files removed")
    return [
        f"| photos: 12 MP JPEG ({SIZE[0]}x{SIZE[1]}, q{QUALITY}, {size_note}) | photos/s | p50 ms | notes |",
        "|---|---:|---:|---|",
        f"| upload over HTTP, 1 client | {one_rate:.2f} | {ms(one_s):.0f} | {half} photos, POST /api/products/{{id}}/photos/ |",
        f"| upload over HTTP, {CLIENTS} clients | {two_rate:.2f} | {ms(two_s):.0f} | {PHOTOS - half} photos |",
        f"| upload over HTTP without the decode | | {ms(bare_s):.0f} | {BARE} uploads of a 320x240 JPEG padded to "
        f"{len(carrier) / 1e6:.2f} MB: HTTP, multipart, storage, SQL |",
        f"| variants job (make_variants: 320/960/1920 px WebP) | {job_rate:.2f} | {ms(job_s):.0f} "
        f"| {len(paths)} photos, one at a time (one worker) |",
        f"| in process: images.clean (decode + re-encode) | {1 / statistics.median(clean_s):.2f} | {ms(clean_s):.0f} "
        f"| {len(clean_s)} photos |",
        f"| in process: images.variants | {1 / statistics.median(variants_s):.2f} | {ms(variants_s):.0f} "
        f"| {len(variants_s)} photos |",
        f"| in process: local storage put | | {ms(put_s):.1f} | {len(put_s)} photos |",
        "",
        f"| a search page of {PHOTOS} thumbnails, downloaded | kB | versus the originals |",
        "|---|---:|---:|",
        f"| before: {PHOTOS} originals | {kb(before)} | 1x |",
        f"| after: {PHOTOS} x 320 px WebP | {kb(small)} | {before / small:.0f}x less |",
        f"| 3x-DPR phone (srcset): {PHOTOS} x 960 px WebP | {kb(large)} | {before / large:.0f}x less |",
    ]


def search_page(base: str, token: str, listing: str, paths: list[str]) -> dict[str, int]:
    """The bytes of the photos stored under `paths`, fetched from the URLs the listing's JSON gives:
    the originals, and the 320 px and 960 px variants."""
    status, body = http("GET", f"{base}/api/products/{listing}/", headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise RuntimeError(f"GET /api/products/{listing}/ answered {status}: {body[:300]!r}")
    shown = {str(p["url"]).removeprefix(MEDIA_URL): p for p in json.loads(body)["photos"]}
    totals = {"original": 0, "320": 0, "960": 0}
    for path in paths:
        photo = shown[path]
        urls = {"original": str(photo["url"]), **{str(v["width"]): str(v["url"]) for v in photo["variants"]}}
        for kind in totals:
            status, data = http("GET", base + urls[kind])
            if status != 200:
                raise RuntimeError(f"GET {urls[kind]} answered {status}")
            totals[kind] += len(data)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="the API's workers")
    parser.add_argument("--no-migrate", action="store_true")
    parser.add_argument("--out", default=str(OUT / "photos.md"))
    args = parser.parse_args()
    if not RUN.exists():
        sys.exit("bench: the local cluster is not running (scripts/pg-local start)")
    with psycopg.connect(superuser_url(), autocommit=True) as admin:
        if admin.execute("select 1 from pg_database where datname = %s", (DBNAME,)).fetchone() is None:
            sys.exit(f"bench: no {DBNAME} database; run make bench-data first")
    if not args.no_migrate:
        from api.migrate import migrate

        migrate(owner_url())
    lift_rate_limits()
    OUT.mkdir(parents=True, exist_ok=True)
    server = Server(args.workers, 2, OUT / "api-photos.log")
    try:
        server.wait_ready()
        lines = run(server.base)
    finally:
        server.stop()
    Path(args.out).write_text("# Nexus benchmark: photos\n\n" + "\n".join(lines) + "\n")
    log("\n" + "\n".join(lines) + f"\n\nwritten to {args.out}")


if __name__ == "__main__":
    main()
