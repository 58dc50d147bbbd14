"""The kernel: what every floor may build on. It imports nothing of ours (setup.cfg's layers
contract), so any module of the project may import it.

    settings.py         Settings (+ settings_app, settings_backends, settings_realtime by
                        concern), load_settings, settings_key; settings_names.py warns about
                        misspelled names
    errors.py           the HTTP error tree, the data layer's failures, the error middleware
    realtime_errors.py  the realtime error tree (error frames)
    edge.py             headers on every response; the envelope for requests the parser refuses
    telemetry.py        logging, the request id, tracing; spans.py: spans free while tracing is off
    metrics.py          Prometheus metrics of one application
    principal.py        who is calling (Principal) and what a route demands (Access)
    namespaces.py       channel namespaces (CHANNEL_NAMESPACES)
    jsonutil.py         JSON encoding; the nesting-depth bound
    security/           passwords, tokens, API keys
"""
