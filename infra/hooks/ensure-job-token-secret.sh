#!/bin/sh
# azd postprovision hook: make sure the job-token secret exists in the app's Key Vault, and that the
# app resolves its JOB_TOKEN_SECRET Key Vault reference to it.
#
# JOB_TOKEN_SECRET derives the links of idempotent and inbox jobs (README, Security). It must be
# random, made once, and kept by every later `azd provision`: a Bicep default such as newGuid()
# would change it on each one, and a deployment cannot create a secret only when it is missing. So
# after every provision (in `azd up`, before deploy) this script
#   1. looks the secret up, retrying while the Key Vault Secrets Officer role the deployment just
#      gave you propagates, and only when it is missing creates it: 32 random bytes written as 64
#      hex characters to a private temporary file that az reads, so the value is never in a
#      command line, an output or a log;
#   2. asks App Service to resolve the app's Key Vault references again (it resolves them when the
#      settings change and caches the result for 24 hours; the first provision set them before the
#      secret existed) until JOB_TOKEN_SECRET reports Resolved, retrying while the app identity's
#      Key Vault Secrets User role propagates;
#   3. restarts the app when the secret is new or the reference was not resolved at first, so an
#      instance started before reads it (best effort: the next deploy starts the app anyway).
# A failure of steps 1 or 2 stops the script with a non-zero exit, so `azd up` stops before deploy.
#
# POSIX sh (azd runs posix hooks with /bin/sh, which is dash on Debian/Ubuntu). Needs the Azure CLI
# logged in as the principal azd deploys with (`az login`): the role to write secrets is given to
# that principal (AZURE_PRINCIPAL_ID). Every input comes from the azd environment.
#
# Tuning for slow role propagation: POSTPROVISION_ATTEMPTS (default 20), POSTPROVISION_RETRY_SECONDS
# (default 15).

set -eu

say() { printf '%s\n' "job-token-secret: $*"; }
die() {
  printf '%s\n' "job-token-secret: error: $*" >&2
  exit 1
}

# Every value this script needs, by its azd environment name.
for name in AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME AZURE_KEY_VAULT_NAME \
  JOB_TOKEN_SECRET_NAME; do
  eval "value=\${$name:-}"
  # shellcheck disable=SC2154 # assigned by the eval above
  [ -n "$value" ] || die "$name is not set; run \`azd provision\` first (it is a Bicep output)."
done

attempts=${POSTPROVISION_ATTEMPTS:-20}
delay=${POSTPROVISION_RETRY_SECONDS:-15}
case "$attempts$delay" in *[!0-9]*) die "POSTPROVISION_ATTEMPTS and POSTPROVISION_RETRY_SECONDS must be whole numbers." ;; esac

command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is required: https://learn.microsoft.com/cli/azure/install-azure-cli"
az account show --subscription "$AZURE_SUBSCRIPTION_ID" --output none ||
  die "the Azure CLI is not logged in to subscription $AZURE_SUBSCRIPTION_ID; run \`az login\`."

subscription=$AZURE_SUBSCRIPTION_ID
vault=$AZURE_KEY_VAULT_NAME
secret=$JOB_TOKEN_SECRET_NAME
app=$AZURE_FUNCTION_APP_NAME

# 1. Does the secret exist? Listing the vault answers yes or no in one call; a failure (no access
#    yet, no network) is retried and never taken for "missing", which would replace a secret in use.
n=1
while :; do
  if ids=$(az keyvault secret list --subscription "$subscription" --vault-name "$vault" --query "[].id" --output tsv); then
    break
  fi
  [ "$n" -lt "$attempts" ] ||
    die "could not list the secrets of Key Vault $vault after $attempts attempts. Is az logged in as the principal azd deploys with (it gets Key Vault Secrets Officer on the vault)? Then run \`azd hooks run postprovision\`."
  say "cannot list the secrets of $vault yet (attempt $n of $attempts; a new role assignment can take minutes); retrying in ${delay}s"
  n=$((n + 1))
  sleep "$delay"
done

found=
for id in $ids; do
  case "$id" in */secrets/"$secret") found=yes ;; esac
done

created=
if [ -n "$found" ]; then
  say "secret $secret exists in Key Vault $vault; kept as it is."
else
  value_file=$(mktemp)
  trap 'rm -f "$value_file"' EXIT
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$value_file"
  [ "$(wc -c <"$value_file" | tr -d ' ')" -eq 64 ] || die "could not read 32 random bytes from /dev/urandom."
  az keyvault secret set --subscription "$subscription" --vault-name "$vault" --name "$secret" \
    --file "$value_file" --output none ||
    die "could not create secret $secret in Key Vault $vault. If a secret of that name was deleted, recover it (\`az keyvault secret recover --vault-name $vault --name $secret\`) or purge it, then run \`azd hooks run postprovision\`."
  rm -f "$value_file"
  created=yes
  say "created secret $secret in Key Vault $vault (32 random bytes)."
fi

# 2. The platform resolves the reference with the app's identity; ask it to do so now.
references="/subscriptions/$subscription/resourceGroups/$AZURE_RESOURCE_GROUP/providers/Microsoft.Web/sites/$app/config/configreferences/appsettings"
n=1
first_status=
while :; do
  az rest --method post --url "$references/refresh?api-version=2022-03-01" --output none ||
    say "asking $app to resolve its Key Vault references failed; checking anyway"
  status=$(az rest --method get --url "$references/JOB_TOKEN_SECRET?api-version=2022-03-01" \
    --query properties.status --output tsv) || status=
  [ -n "$first_status" ] || first_status=${status:-unknown}
  [ "$status" != Resolved ] || break
  [ "$n" -lt "$attempts" ] ||
    die "JOB_TOKEN_SECRET of $app does not resolve (status ${status:-unknown}) after $attempts attempts, and the app refuses to start without it. Check that its identity has Key Vault Secrets User on $vault (a new role assignment can take minutes), then run \`azd hooks run postprovision\`."
  say "JOB_TOKEN_SECRET of $app not resolved yet (status ${status:-unknown}; attempt $n of $attempts); retrying in ${delay}s"
  n=$((n + 1))
  sleep "$delay"
done
say "JOB_TOKEN_SECRET of $app resolves to secret $secret."

# 3. Environment variables are read when an instance starts.
if [ -n "$created" ] || [ "$first_status" != Resolved ]; then
  if az functionapp restart --subscription "$subscription" --resource-group "$AZURE_RESOURCE_GROUP" --name "$app" --output none; then
    say "restarted $app so that running instances read the secret."
  else
    say "could not restart $app; if it was running, restart it: az functionapp restart --resource-group $AZURE_RESOURCE_GROUP --name $app"
  fi
fi
