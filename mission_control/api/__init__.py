"""HTTP layer: routes that translate requests into calls on the service layer and back."""
