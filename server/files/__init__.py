"""Files: resumable uploads (over WebSocket and HTTP) and the stored files they become."""
