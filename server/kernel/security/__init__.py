"""Pure security logic, no I/O but the shipped word list; callers pass every setting in.

passwords   argon2id hashing off the event loop, and the password policy
tokens      signed JWT access tokens with key rotation; one InvalidToken error
apikeys     API keys recognisable when leaked, tickets and refresh tokens (stored hashed)
"""
