# fragment: see the top-level Makefile.am
CORE_SOURCES += agentd/aws-plugin.c
