# autoscaling plugin: see plugins/autoscaling/README.md
plugin_LTLIBRARIES += plugins/autoscaling/autoscaling.la
plugins_autoscaling_autoscaling_la_SOURCES = plugins/autoscaling/autoscaling.c
plugins_autoscaling_autoscaling_la_CFLAGS = $(PLUGIN_CF)
plugins_autoscaling_autoscaling_la_LDFLAGS = $(PLUGIN_LF)
plugins_autoscaling_autoscaling_la_LIBADD = $(JANSSON_LIBS) $(LIBUV_LIBS)

EXTRA_DIST += plugins/autoscaling/README.md tests/integration/test_autoscaling.py \
	tests/emulators/autoscaling.py
