# azd postdeploy hook (Windows twin of postdeploy.sh; keep the two in step): subscribe the inbox
# blob trigger to the images account's Event Grid system topic.
#
# The subscription cannot be part of the Bicep: its webhook URL carries the host's blobs_extension
# system key, which exists only once the code with an Event Grid blob trigger runs, and Event Grid
# validates the webhook when the subscription is created. See postdeploy.sh for the steps.
# Needs the Azure CLI, logged in (`az login`). Inputs come from the azd environment (Bicep outputs).

$HookName = 'postdeploy'
. (Join-Path $PSScriptRoot 'common.ps1')

$envValues = Get-AzdValues @(
  'AZURE_SUBSCRIPTION_ID', 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME',
  'AZURE_FUNCTION_APP_HOSTNAME', 'INBOX_FUNCTION_NAME', 'INBOX_CONTAINER',
  'EVENTGRID_SYSTEM_TOPIC_ID', 'EVENTGRID_SUBSCRIPTION_NAME', 'EVENTGRID_DEADLETTER_CONTAINER',
  'AZURE_STORAGE_ACCOUNT_ID'
)
$attempts, $delay = Get-RetrySettings 'POSTDEPLOY' 10 15
$subscription = $envValues['AZURE_SUBSCRIPTION_ID']
Assert-AzLogin $subscription

$app = $envValues['AZURE_FUNCTION_APP_NAME']
$group = $envValues['AZURE_RESOURCE_GROUP']
$fn = $envValues['INBOX_FUNCTION_NAME']

# 1. The blob-trigger function must be deployed (the host answers 202 for an unknown function and
#    Event Grid would drop the events). On Flex Consumption the list can hold only WarmUp until the
#    host's triggers are synced (Azure/azure-functions-host#10169): each retry asks ARM to sync them.
$siteId = "/subscriptions/$subscription/resourceGroups/$group/providers/Microsoft.Web/sites/$app"
for ($n = 1; ; $n++) {
  az functionapp function show --subscription $subscription --resource-group $group --name $app --function-name $fn --output none
  if ($LASTEXITCODE -eq 0) { break }
  if ($n -ge $attempts) { Die "function $fn is not deployed to $app; does the app register an Event Grid blob trigger named ${fn}?" }
  Say "function $fn not listed yet (attempt $n of $attempts); syncing triggers, retrying in ${delay}s"
  az rest --method post --url "$siteId/host/default/sync?api-version=2024-04-01" --output none
  if ($LASTEXITCODE -ne 0) { Say 'trigger sync failed; retrying anyway' }
  Start-Sleep -Seconds $delay
}

# 2. The blobs_extension system key.
$key = ''
for ($n = 1; ; $n++) {
  $key = az functionapp keys list --subscription $subscription --resource-group $group --name $app --query systemKeys.blobs_extension --output tsv
  if ($LASTEXITCODE -eq 0 -and -not [string]::IsNullOrWhiteSpace($key)) { $key = $key.Trim(); break }
  if ($n -ge $attempts) { Die "no blobs_extension system key on $app after $attempts attempts; is the host running?" }
  Say "blobs_extension key not available yet (attempt $n of $attempts); retrying in ${delay}s"
  Start-Sleep -Seconds $delay
}

$hostName = $envValues['AZURE_FUNCTION_APP_HOSTNAME']
$webhook = "https://$hostName/runtime/webhooks/blobs?functionName=Host.Functions.$fn&code=$([uri]::EscapeDataString($key))"
# The trailing /blobs/ keeps a container named e.g. "inbox-old" out.
$subjectPrefix = "/blobServices/default/containers/$($envValues['INBOX_CONTAINER'])/blobs/"
$subscriptionUrl = "$($envValues['EVENTGRID_SYSTEM_TOPIC_ID'])/eventSubscriptions/$($envValues['EVENTGRID_SUBSCRIPTION_NAME'])?api-version=2025-02-15"

$body = @{
  properties = @{
    destination = @{
      endpointType = 'WebHook'
      properties = @{ endpointUrl = $webhook; maxEventsPerBatch = 1; preferredBatchSizeInKilobytes = 64 }
    }
    filter = @{
      includedEventTypes = @('Microsoft.Storage.BlobCreated')
      subjectBeginsWith = $subjectPrefix
      isSubjectCaseSensitive = $false
    }
    eventDeliverySchema = 'EventGridSchema'
    retryPolicy = @{ maxDeliveryAttempts = 30; eventTimeToLiveInMinutes = 1440 }
    deadLetterWithResourceIdentity = @{
      identity = @{ type = 'SystemAssigned' }
      deadLetterDestination = @{
        endpointType = 'StorageBlob'
        properties = @{ resourceId = $envValues['AZURE_STORAGE_ACCOUNT_ID']; blobContainerName = $envValues['EVENTGRID_DEADLETTER_CONTAINER'] }
      }
    }
  }
}
# A file, not an argument: PowerShell mangles quotes in JSON passed to native commands.
$bodyFile = New-TemporaryFile
try {
  $body | ConvertTo-Json -Depth 10 | Set-Content -Path $bodyFile -Encoding utf8

  try { Invoke-WebRequest -Uri "https://$hostName/api/health" -TimeoutSec 60 -UseBasicParsing | Out-Null }
  catch { Say 'warm-up request failed; continuing' }

  for ($n = 1; ; $n++) {
    Say "subscribing $fn to BlobCreated under $subjectPrefix (attempt $n of $attempts)"
    az rest --method put --url $subscriptionUrl --body "@$bodyFile" --output none
    if ($LASTEXITCODE -eq 0) {
      $state = ''
      for ($polls = 0; $polls -lt 60; $polls++) {
        $state = az rest --method get --url $subscriptionUrl --query properties.provisioningState --output tsv
        if ($LASTEXITCODE -ne 0) { Die 'could not read the event subscription back.' }
        if ($state -eq 'Succeeded') {
          Say "event subscription $($envValues['EVENTGRID_SUBSCRIPTION_NAME']) is ready: blobs created in $($envValues['INBOX_CONTAINER']) trigger $fn."
          exit 0
        }
        if ($state -eq 'Failed' -or $state -eq 'Canceled') { break }
        Start-Sleep -Seconds 5
      }
      Say "event subscription ended in state '$state'"
    }
    if ($n -ge $attempts) { Die "could not create event subscription $($envValues['EVENTGRID_SUBSCRIPTION_NAME']) after $attempts attempts." }
    Start-Sleep -Seconds $delay
  }
}
finally {
  Remove-Item -Path $bodyFile -ErrorAction SilentlyContinue
}
