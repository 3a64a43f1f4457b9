"""Channel adapters: turning what arrives on a door (SMS, e-mail, messaging, CİMER) into a
submission. Pure parsing and mapping; storing and replying are the service's business."""
