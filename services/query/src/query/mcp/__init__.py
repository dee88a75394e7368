"""The registry's MCP tools and model-card resources, defined once for every transport.

:func:`query.mcp.tools.build_server` takes the HTTP caller as an argument: the query service
passes one that calls its own API in-process with the MCP request's key (``query.mcp.server``),
``registry mcp`` one that calls the API over the network with the user's key.
"""
