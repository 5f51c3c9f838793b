# Shared by scripts/lib/emulators.sh and scripts/lib/languages.sh: where tools are installed,
# and installing Python tools into a venv of their own. Source it; it defines functions only.
#
# Tools are installed into $WEIR_TOOLS_DIR (default ~/.cache/weir-tools), outside the clone,
# so later runs reuse them.

tools="${WEIR_TOOLS_DIR:-$HOME/.cache/weir-tools}"

# Run "$@" as root (through sudo when not root already): installing Debian packages.
as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi
}

# Install the pinned PyPI packages $3... into a new venv at $1 unless every program named in
# $2 (space-separated) is there already; say so on stderr.
install_venv() {
  local venv=$1 programs=$2 program
  shift 2
  for program in $programs; do
    if [[ ! -x "$venv/bin/$program" ]]; then
      echo "installing $* into $venv (once)" >&2
      rm -rf "$venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
      return
    fi
  done
}

# Build and install crate $1 at version $2 from crates.io into $tools/$1-$2 (its binaries in
# bin/) unless its binary $1 is there already; say so on stderr, with $3 for how long it takes.
install_crate() {
  local crate=$1 version=$2 takes=$3
  if [[ ! -x "$tools/$crate-$version/bin/$crate" ]]; then
    echo "installing $crate $version into $tools/$crate-$version (once; $takes)" >&2
    cargo install "$crate" --version "$version" --locked --root "$tools/$crate-$version" --quiet >&2
  fi
}
