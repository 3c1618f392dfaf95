"""Consultations' application side: the buttons, the scheduled jobs (opening sends invitations through the
delivery engine, closing computes the opinion map and tells participants the result) and rendering."""
