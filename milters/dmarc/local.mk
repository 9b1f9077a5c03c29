# The DMARC module (libopendmarc): filled in with the module.
TG_DMARC_LIBS =
