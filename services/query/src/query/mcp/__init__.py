"""The query service's MCP endpoint (``/mcp``): the tools of :mod:`registry_client.mcp` over Streamable HTTP.

Each tool call goes to the query's own API with the MCP request's key (``query.mcp.server``), so an
assistant sees exactly what that key sees over HTTP.
"""
