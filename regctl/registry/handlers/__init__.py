"""HTTP handlers: parse the request, call the stores, build the response. One module per resource."""
