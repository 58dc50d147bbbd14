"""Files: resumable uploads (over WebSocket and HTTP) and the stored files they become.
Chunks go to disk as they arrive (never held whole in memory), the SHA-256 is computed on
the way, metadata lives in PostgreSQL (storage/files.py).

    uploads.py   Uploads, the service: starting and resuming uploads; the sweep
    receiver.py  chunks, end, abort and pause of a started upload
    body.py      an HTTP body part streamed into an upload
    quota.py     reserving room for a new upload (its row)
    upload.py    the Upload value; safe names and media types
    active.py    this node's active upload per file, and the per-file locks
    disk.py      the files on disk and the thread-run operations on them
    guard.py     shielding from cancellation; database outages as retryable errors
"""
