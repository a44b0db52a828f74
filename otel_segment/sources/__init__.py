"""
Where messages come from: logging records, OpenTelemetry spans and log records, decorators.

Each source maps what it sees to the six calls of a client (the one given, one it owns,
or the process-wide default) and never raises into the code that logged, ended a span or
called a decorated function.
"""
