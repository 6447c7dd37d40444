"""Orange Money Web Payment (WebPay): docs/providers/orange.md."""
