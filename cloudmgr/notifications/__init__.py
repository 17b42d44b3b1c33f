"""E-mail (SMTP) and webhook notifications, sent by the work queue after the change committed."""
