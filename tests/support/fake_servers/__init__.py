"""Local servers that speak outside services' protocols (Alpha Vantage HTTP, exchange WebSockets)."""
