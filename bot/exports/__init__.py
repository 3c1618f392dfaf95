"""Exports: files a reader takes away (committee reports, spreadsheets, raw data), written for one reader.

This is the export machinery every feature reuses (consultations now; decision votes, elections, evaluation rounds,
volunteer hours and dual-reporting reports as they come), so a new export only says what goes in it:

- generic writers, which know nothing of any feature and write to a binary stream:
  ``xlsx`` (sheets of rows from iterators, xlsxwriter in constant_memory mode), ``csvfile`` (streamed rows),
  ``jsonfile`` (a machine-readable document), ``pdf`` (a Jinja2 HTML template through WeasyPrint), ``charts``
  (matplotlib figures as SVG for the PDF), ``colours`` (the groups' and stances' colours, shared with the map picture
  sent in chat), ``fonts`` (the CJK font shipped with Linli, used by the PDF and the
  charts, never one from the system) and ``formats`` (numbers, percentages and dates with Babel for the reader);
- one module per feature that builds its tables, document and report from its domain's data:
  ``consultation`` (a consultation's outcome).

Headings, column names and report text are translated for the reader (bot.rendering.Localizer); machine-readable
output (JSON keys, the Polis-layout CSV) is not."""
