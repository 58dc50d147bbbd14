"""Files: resumable uploads (over WebSocket and HTTP) and the stored files they become.
Chunks go to disk as they arrive (never held whole in memory), the SHA-256 is computed on
the way, metadata lives in PostgreSQL (storage/files.py).

    uploads.py   Uploads, the service the app holds: owns the parts below and calls them;
                 streams an HTTP body part into an upload; the sweep
    starter.py   Starter: beginning an upload, resuming (taking over) one
    receiver.py  Receiver: chunks, end, abort and pause of a started upload
    quota.py     reserving room for a new upload (its row), and giving it back
    upload.py    the Upload value; safe names and media types
    active.py    this node's active upload per file, and the per-file locks
    disk.py      the files on disk and the thread-run operations on them
    guard.py     shielding from cancellation; database outages as retryable errors
"""
