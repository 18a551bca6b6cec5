"""Alpha Vantage: ``CURRENCY_EXCHANGE_RATE`` polling within a daily request budget, plus daily history."""
