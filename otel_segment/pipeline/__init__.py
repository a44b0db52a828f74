"""
The core every source feeds: build a message, check it, encode it, queue it, deliver it.

The client (:mod:`.client`) makes and validates messages (:mod:`.messages`), encodes
them once (:mod:`.encoding`) and hands the bytes to a batching processor (:mod:`.batching`),
whose workers send batches (:mod:`.delivery`, :mod:`.retry`) over one HTTP session
(:mod:`.transport`); a spool (:mod:`.spool`, :mod:`.spooled`) keeps them across a crash.
Nothing here imports a source, an integration or the command line.
"""
