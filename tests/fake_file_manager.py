"""A stand-in desktop file manager on the D-Bus session bus, for the "Open Containing Folder"
test: it answers ``org.freedesktop.FileManager1.ShowItems``, prints the URIs it was given and
exits. Runs under the system Python (python3-dbus and python3-gi), not the project's venv."""

import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
loop = GLib.MainLoop()


class FileManager(dbus.service.Object):
    @dbus.service.method("org.freedesktop.FileManager1", in_signature="ass", out_signature="")
    def ShowItems(self, uris, startup_id):  # noqa: N802 -- the D-Bus method's name
        print("ShowItems", *map(str, uris), flush=True)
        GLib.idle_add(loop.quit)


bus = dbus.SessionBus()
name = dbus.service.BusName("org.freedesktop.FileManager1", bus)
FileManager(bus, "/org/freedesktop/FileManager1")
print("ready", flush=True)
GLib.timeout_add_seconds(20, lambda: sys.exit(1))
loop.run()
