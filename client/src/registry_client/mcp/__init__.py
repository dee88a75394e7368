"""The registry's MCP tools and model-card resources, defined once for every transport (the ``mcp`` extra).

:func:`registry_client.mcp.tools.build_server` takes the HTTP caller as an argument: the query
service passes one that calls its own API with the MCP request's key (its ``/mcp`` endpoint),
``registry mcp`` one that calls the API over the network with the user's key.
"""
