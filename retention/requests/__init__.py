"""Subject requests: the register, finding the person, one module per kind of request, receipts, replay."""
