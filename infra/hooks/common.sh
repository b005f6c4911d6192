# shellcheck shell=sh
# Sourced by every azd hook script after it sets `hook` to its own name: the checks they all make
# before touching Azure, so each names what is missing the same way.

say() { printf '%s\n' "$hook: $*"; }
die() {
  printf '%s\n' "$hook: error: $*" >&2
  exit 1
}

# Stops unless each named azd environment value (a Bicep output or an azd built-in) is set.
require_azd_values() {
  for name in "$@"; do
    eval "value=\${$name:-}"
    # shellcheck disable=SC2154 # assigned by the eval above
    [ -n "$value" ] || die "$name is not set; run \`azd provision\` first (it is a Bicep output)."
  done
}

# Sets `attempts` and `delay` (seconds) from <prefix>_ATTEMPTS and <prefix>_RETRY_SECONDS, else the
# defaults given: role assignments and first starts can take minutes, longer on some tenants.
read_retry_settings() {
  eval "attempts=\${$1_ATTEMPTS:-$2}; delay=\${$1_RETRY_SECONDS:-$3}"
  case "$attempts$delay" in *[!0-9]*) die "$1_ATTEMPTS and $1_RETRY_SECONDS must be whole numbers." ;; esac
}

# azd's own login is not shared with az, so a missing `az login` is the usual first failure.
require_az_login() {
  command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required: https://learn.microsoft.com/cli/azure/install-azure-cli"
  az account show --subscription "$AZURE_SUBSCRIPTION_ID" --output none ||
    die "the Azure CLI is not logged in to subscription $AZURE_SUBSCRIPTION_ID; run \`az login\`."
}
