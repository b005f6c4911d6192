#!/bin/sh
# azd postprovision hook: make sure the app's generated secrets exist in its Key Vault, and that the
# app resolves the Key Vault references of its settings to them.
#
# The secrets, each behind one app setting:
#   - job-token-secret (JOB_TOKEN_SECRET) derives the links of idempotent and inbox jobs (README,
#     Security): 32 random bytes as 64 hex characters;
#   - callback-signing-secret (CALLBACK_SIGNING_SECRET) signs callbacks the Standard Webhooks way,
#     and without it callbacks and trigger subscriptions answer 501: `whsec_` and the base64 of 32
#     random bytes.
# Each must be random, made once, and kept by every later `azd provision`: a Bicep default such as
# newGuid() would change it on each one, and a deployment cannot create a secret only when it is
# missing. So after every provision (in `azd up`, before deploy) this script
#   1. lists the vault's secrets, retrying while the Key Vault Secrets Officer role the deployment
#      just gave you propagates, and creates only the missing ones, each from random bytes written
#      to a private temporary file that az reads, so no value is ever in a command line, an output
#      or a log;
#   2. asks App Service to resolve the app's Key Vault references again (it resolves them when the
#      settings change and caches the result for 24 hours; the first provision set them before the
#      secrets existed) until every one of those settings reports Resolved, retrying while the app
#      identity's Key Vault Secrets User role propagates;
#   3. restarts the app when a secret is new or a reference was not resolved at first, so an
#      instance started before reads it (best effort: the next deploy starts the app anyway).
# A failure of steps 1 or 2 stops the script with a non-zero exit, so `azd up` stops before deploy.
#
# POSIX sh (azd runs posix hooks with /bin/sh, which is dash on Debian/Ubuntu), with od and base64.
# Needs the Azure CLI logged in as the principal azd deploys with (`az login`): the role to write
# secrets is given to that principal (AZURE_PRINCIPAL_ID). Every input comes from the azd environment.
#
# Tuning for slow role propagation: POSTPROVISION_ATTEMPTS (default 20), POSTPROVISION_RETRY_SECONDS
# (default 15).

set -eu

hook=ensure-secrets
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

# Every value this script needs, by its azd environment name.
require_azd_values AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME \
  AZURE_KEY_VAULT_NAME JOB_TOKEN_SECRET_NAME CALLBACK_SIGNING_SECRET_NAME
read_retry_settings POSTPROVISION 20 15
require_az_login

subscription=$AZURE_SUBSCRIPTION_ID
vault=$AZURE_KEY_VAULT_NAME
app=$AZURE_FUNCTION_APP_NAME

# The secrets, each as <Key Vault name>:<app setting>:<how a new one is made>.
secrets="$JOB_TOKEN_SECRET_NAME:JOB_TOKEN_SECRET:hex $CALLBACK_SIGNING_SECRET_NAME:CALLBACK_SIGNING_SECRET:webhook"

# A new secret of a kind, into a file; fails unless it came out whole.
new_secret() {
  case "$1" in
    # 32 random bytes as 64 hex characters.
    hex)
      od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$2"
      grep -Eqx '[0-9a-f]{64}' "$2"
      ;;
    # A Standard Webhooks secret: whsec_ and the base64 of 32 random bytes.
    webhook)
      { printf 'whsec_' && dd if=/dev/urandom bs=32 count=1 2>/dev/null | base64 | tr -d '\n'; } >"$2"
      grep -Eqx 'whsec_[A-Za-z0-9+/]{43}=' "$2"
      ;;
  esac
}

# 1. Which secrets exist? Listing the vault answers for all of them in one call; a failure (no
#    access yet, no network) is retried and never taken for "missing", which would replace a secret
#    in use.
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

value_file=$(mktemp)
trap 'rm -f "$value_file"' EXIT
created=
for entry in $secrets; do
  secret=${entry%%:*}
  kind=${entry##*:}
  found=
  for id in $ids; do
    case "$id" in */secrets/"$secret") found=yes ;; esac
  done
  if [ -n "$found" ]; then
    say "secret $secret exists in Key Vault $vault; kept as it is."
    continue
  fi
  new_secret "$kind" "$value_file" || die "could not make a new $secret from /dev/urandom (it needs od, dd and base64)."
  az keyvault secret set --subscription "$subscription" --vault-name "$vault" --name "$secret" \
    --file "$value_file" --output none ||
    die "could not create secret $secret in Key Vault $vault. If a secret of that name was deleted, recover it (\`az keyvault secret recover --vault-name $vault --name $secret\`) or purge it, then run \`azd hooks run postprovision\`."
  : >"$value_file"
  created=yes
  say "created secret $secret in Key Vault $vault (32 random bytes)."
done
rm -f "$value_file"

# 2. The platform resolves the references with the app's identity; ask it to do so now, then check
#    each setting until all of them resolve.
references="/subscriptions/$subscription/resourceGroups/$AZURE_RESOURCE_GROUP/providers/Microsoft.Web/sites/$app/config/configreferences/appsettings"
settings=
for entry in $secrets; do
  setting=${entry#*:}
  settings="$settings ${setting%%:*}"
done
pending=$settings
n=1
unresolved_at_first=
while :; do
  az rest --method post --url "$references/refresh?api-version=2022-03-01" --output none ||
    say "asking $app to resolve its Key Vault references failed; checking anyway"
  still=
  for setting in $pending; do
    status=$(az rest --method get --url "$references/$setting?api-version=2022-03-01" \
      --query properties.status --output tsv) || status=
    [ "$status" = Resolved ] && continue
    still="$still $setting"
    [ "$n" -gt 1 ] || unresolved_at_first=yes
    [ "$n" -lt "$attempts" ] ||
      die "$setting of $app does not resolve (status ${status:-unknown}) after $attempts attempts, and the app needs it. Check that its identity has Key Vault Secrets User on $vault (a new role assignment can take minutes), then run \`azd hooks run postprovision\`."
    say "$setting of $app not resolved yet (status ${status:-unknown}; attempt $n of $attempts); retrying in ${delay}s"
  done
  pending=$still
  [ -n "$pending" ] || break
  n=$((n + 1))
  sleep "$delay"
done
say "the Key Vault references of $app resolve:$settings."

# 3. Environment variables are read when an instance starts.
if [ -n "$created" ] || [ -n "$unresolved_at_first" ]; then
  if az functionapp restart --subscription "$subscription" --resource-group "$AZURE_RESOURCE_GROUP" --name "$app" --output none; then
    say "restarted $app so that running instances read the secrets."
  else
    say "could not restart $app; if it was running, restart it: az functionapp restart --resource-group $AZURE_RESOURCE_GROUP --name $app"
  fi
fi
