#!/bin/sh
# Install the system libraries Qt (PySide6) needs and this machine lacks, so the viewer opens.
#
#   sh resources/install-qt-libs.sh [PYTHON]     (default: python, i.e. the active virtual environment)
#
# PySide6's wheel bundles Qt but not the X11/EGL/font libraries its plugins link to; on a fresh
# Debian the xcb platform plugin then fails with "Could not load the Qt platform plugin xcb"
# (libxcb-icccm4, libxcb-keysyms1 ... missing). This asks `ldd` what Qt's libraries and its xcb and
# offscreen plugins cannot find, turns each missing soname into its Debian/Ubuntu package name
# (libxcb-icccm.so.4 -> libxcb-icccm4), and apt-get installs those, with sudo when not root.
# Nothing missing: it does nothing. Not Linux, or no apt-get: it says what is missing and stops.
set -eu

python=${1:-python}
[ "$(uname -s)" = Linux ] || exit 0  # macOS and Windows wheels carry what Qt needs
command -v ldd >/dev/null 2>&1 || exit 0

qt_dir=$("$python" -c 'import os, PySide6; print(os.path.join(os.path.dirname(PySide6.__file__), "Qt"))')

missing_sonames() {
    for file in "$qt_dir"/plugins/platforms/libqxcb.so "$qt_dir"/plugins/platforms/libqoffscreen.so \
        "$qt_dir"/plugins/xcbglintegrations/*.so "$qt_dir"/plugins/imageformats/libqsvg.so \
        "$qt_dir"/lib/libQt6Core.so.6 "$qt_dir"/lib/libQt6Gui.so.6 "$qt_dir"/lib/libQt6Widgets.so.6 \
        "$qt_dir"/lib/libQt6DBus.so.6 "$qt_dir"/lib/libQt6XcbQpa.so.6 "$qt_dir"/lib/libQt6Svg.so.6 \
        "$qt_dir"/lib/libQt6OpenGL.so.6; do
        [ -e "$file" ] && ldd "$file" 2>/dev/null
    done | awk '/not found/ {print $1}' | sort -u
}

# libfoo-bar.so.4 -> libfoo-bar4; a name ending in a digit gets a dash (libdbus-1.so.3 -> libdbus-1-3).
package_of() {
    case "$1" in
        libglib-2.0.so.*|libgobject-2.0.so.*|libgthread-2.0.so.*) echo libglib2.0-0 ;;
        libgssapi_krb5.so.*) echo libgssapi-krb5-2 ;;
        *)
            name=${1%%.so.*}
            version=${1##*.so.}
            version=${version%%.*}
            case "$name" in *[0-9]) name="$name-" ;; esac
            echo "$name$version" | tr '[:upper:]' '[:lower:]'
            ;;
    esac
}

missing=$(missing_sonames)
[ -n "$missing" ] || exit 0

packages=$(for soname in $missing; do package_of "$soname"; done | sort -u | tr '\n' ' ')
echo "Qt needs system libraries that are missing:" $missing
if ! command -v apt-get >/dev/null 2>&1; then
    echo "Install them with your package manager (on Debian/Ubuntu: $packages), then start the viewer again." >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
        echo "Not root and no sudo: as root, run: apt-get install $packages" >&2
        exit 1
    fi
fi
echo "Installing: $packages"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086  # one word per package
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages

still=$(missing_sonames)
if [ -n "$still" ]; then
    echo "Still missing after installing $packages:" $still >&2
    exit 1
fi
