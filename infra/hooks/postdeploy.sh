#!/bin/sh
# azd postdeploy hook: subscribe the inbox blob trigger to the images account's Event Grid system topic.
#
# The subscription cannot be part of the Bicep: its webhook URL carries the host's blobs_extension
# system key, which exists only once the code with an Event Grid blob trigger runs, and Event Grid
# validates the webhook when the subscription is created. So after every deploy this script
#   1. checks the blob-trigger function is deployed, asking the platform to sync the host's
#      triggers while it is not listed yet,
#   2. reads the blobs_extension key,
#   3. creates or updates the subscription: BlobCreated events under the inbox container only,
#      delivered to https://<default hostname>/runtime/webhooks/blobs?functionName=Host.Functions.<fn>&code=<key>,
#      with retries and a dead-letter container,
#   4. waits for Event Grid to report it Succeeded.
# Any failure stops the script with a non-zero exit, so `azd up`/`azd deploy` fails visibly.
#
# POSIX sh (azd runs posix hooks with /bin/sh, which is dash on Debian/Ubuntu). Needs the Azure CLI,
# logged in (`az login`): azd's own login is not shared with az. Every input comes from the azd
# environment (Bicep outputs), exported to hooks by azd.
#
# Tuning for slow first starts: POSTDEPLOY_ATTEMPTS (default 10), POSTDEPLOY_RETRY_SECONDS (default 15).

set -eu

hook=postdeploy
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

# Every value this script needs, by its azd environment name.
require_azd_values AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_FUNCTION_APP_NAME \
  AZURE_FUNCTION_APP_HOSTNAME INBOX_FUNCTION_NAME INBOX_CONTAINER EVENTGRID_SYSTEM_TOPIC_ID \
  EVENTGRID_SUBSCRIPTION_NAME EVENTGRID_DEADLETTER_CONTAINER AZURE_STORAGE_ACCOUNT_ID
read_retry_settings POSTDEPLOY 10 15
require_az_login

app=$AZURE_FUNCTION_APP_NAME
group=$AZURE_RESOURCE_GROUP
fn=$INBOX_FUNCTION_NAME

# 1. The blob-trigger function must be deployed and indexed, or Event Grid would be told to
#    deliver to a function the host does not know (it answers 202 and drops the event). On Flex
#    Consumption the list can hold only WarmUp after a deploy until the host's triggers are synced
#    (Azure/azure-functions-host#10169), so each retry first asks ARM to sync them.
site_id="/subscriptions/$AZURE_SUBSCRIPTION_ID/resourceGroups/$group/providers/Microsoft.Web/sites/$app"
n=1
until az functionapp function show --subscription "$AZURE_SUBSCRIPTION_ID" --resource-group "$group" --name "$app" \
  --function-name "$fn" --output none; do
  [ "$n" -lt "$attempts" ] || die "function $fn is not deployed to $app; does the app register an Event Grid blob trigger named $fn?"
  say "function $fn not listed yet (attempt $n of $attempts); syncing triggers, retrying in ${delay}s"
  az rest --method post --url "$site_id/host/default/sync?api-version=2024-04-01" --output none || say "trigger sync failed; retrying anyway"
  n=$((n + 1))
  sleep "$delay"
done

# 2. The blobs_extension system key appears once the host has started the blob extension.
n=1
key=
while :; do
  if key=$(az functionapp keys list --subscription "$AZURE_SUBSCRIPTION_ID" --resource-group "$group" --name "$app" \
    --query systemKeys.blobs_extension --output tsv) && [ -n "$key" ]; then
    break
  fi
  [ "$n" -lt "$attempts" ] || die "no blobs_extension system key on $app after $attempts attempts; is the host running?"
  say "blobs_extension key not available yet (attempt $n of $attempts); retrying in ${delay}s"
  n=$((n + 1))
  sleep "$delay"
done

# The key goes into a query string: percent-encode the characters base64 may contain.
encoded_key=$(printf '%s' "$key" | sed -e 's/%/%25/g' -e 's/+/%2B/g' -e 's|/|%2F|g' -e 's/=/%3D/g')
webhook="https://$AZURE_FUNCTION_APP_HOSTNAME/runtime/webhooks/blobs?functionName=Host.Functions.$fn&code=$encoded_key"
# The trailing /blobs/ keeps a container named e.g. "inbox-old" out.
subject_prefix="/blobServices/default/containers/$INBOX_CONTAINER/blobs/"
subscription_url="$EVENTGRID_SYSTEM_TOPIC_ID/eventSubscriptions/$EVENTGRID_SUBSCRIPTION_NAME?api-version=2025-02-15"

json_string() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }

body=$(mktemp)
trap 'rm -f "$body"' EXIT
cat >"$body" <<EOF
{
  "properties": {
    "destination": {
      "endpointType": "WebHook",
      "properties": {
        "endpointUrl": $(json_string "$webhook"),
        "maxEventsPerBatch": 1,
        "preferredBatchSizeInKilobytes": 64
      }
    },
    "filter": {
      "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
      "subjectBeginsWith": $(json_string "$subject_prefix"),
      "isSubjectCaseSensitive": false
    },
    "eventDeliverySchema": "EventGridSchema",
    "retryPolicy": { "maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440 },
    "deadLetterWithResourceIdentity": {
      "identity": { "type": "SystemAssigned" },
      "deadLetterDestination": {
        "endpointType": "StorageBlob",
        "properties": {
          "resourceId": $(json_string "$AZURE_STORAGE_ACCOUNT_ID"),
          "blobContainerName": $(json_string "$EVENTGRID_DEADLETTER_CONTAINER")
        }
      }
    }
  }
}
EOF

# Event Grid calls the webhook to validate it; a cold Flex instance can be slow to answer, so
# wake it first (best effort) and retry the creation.
if command -v curl >/dev/null 2>&1; then
  curl --silent --output /dev/null --max-time 60 "https://$AZURE_FUNCTION_APP_HOSTNAME/api/health" || say "warm-up request failed; continuing"
fi

# 3 + 4. Create or update (PUT is idempotent), then wait for the outcome.
n=1
while :; do
  say "subscribing $fn to BlobCreated under $subject_prefix (attempt $n of $attempts)"
  if az rest --method put --url "$subscription_url" --body "@$body" --output none; then
    state=
    polls=0
    while [ "$polls" -lt 60 ]; do
      state=$(az rest --method get --url "$subscription_url" --query properties.provisioningState --output tsv) ||
        die "could not read the event subscription back."
      case "$state" in
        Succeeded)
          say "event subscription $EVENTGRID_SUBSCRIPTION_NAME is ready: blobs created in $INBOX_CONTAINER trigger $fn."
          exit 0
          ;;
        Failed | Canceled) break ;;
      esac
      polls=$((polls + 1))
      sleep 5
    done
    say "event subscription ended in state '${state:-unknown}'"
  fi
  [ "$n" -lt "$attempts" ] || die "could not create event subscription $EVENTGRID_SUBSCRIPTION_NAME after $attempts attempts."
  n=$((n + 1))
  sleep "$delay"
done
