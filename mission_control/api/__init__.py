"""The JSON API: routes that parse each request into its model (cluster messages into their
`contract.messages` model), call the service layer, and return its reply model."""
