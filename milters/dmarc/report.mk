# The DMARC report store and aggregate reports (RFC 9990): filled in
# with the reports.
TG_DMARC_REPORT_LIBS =
