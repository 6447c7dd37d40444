"""Wave Checkout (wave.com): hosted checkout sessions paid in the Wave app, full refunds, signed webhooks."""
