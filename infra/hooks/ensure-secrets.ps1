# azd postprovision hook (Windows twin of ensure-secrets.sh; keep the two in step): make sure the
# app's generated secrets (job-token-secret, callback-signing-secret) exist in its Key Vault, and
# that the app resolves the Key Vault references of its settings to them.
#
# Each secret must be random, made once, and kept by every later `azd provision`, which a
# deployment cannot do. See ensure-secrets.sh for the steps. Needs the Azure CLI, logged in
# (`az login`) as the principal azd deploys with. Inputs come from the azd environment.

$HookName = 'ensure-secrets'
. (Join-Path $PSScriptRoot 'common.ps1')

$envValues = Get-AzdValues @(
  'AZURE_SUBSCRIPTION_ID', 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME',
  'AZURE_KEY_VAULT_NAME', 'JOB_TOKEN_SECRET_NAME', 'CALLBACK_SIGNING_SECRET_NAME'
)
$attempts, $delay = Get-RetrySettings 'POSTPROVISION' 20 15
$subscription = $envValues['AZURE_SUBSCRIPTION_ID']
Assert-AzLogin $subscription

$group = $envValues['AZURE_RESOURCE_GROUP']
$app = $envValues['AZURE_FUNCTION_APP_NAME']
$vault = $envValues['AZURE_KEY_VAULT_NAME']

function New-RandomBytes {
  $bytes = [byte[]]::new(32)
  [System.Security.Cryptography.RandomNumberGenerator]::Fill($bytes)
  return , $bytes
}

# The secrets: Key Vault name, the app setting that references it, and how a new one is made.
$secrets = @(
  @{ Name = $envValues['JOB_TOKEN_SECRET_NAME']; Setting = 'JOB_TOKEN_SECRET'
    # 32 random bytes as 64 hex characters.
    New = { [Convert]::ToHexString((New-RandomBytes)).ToLowerInvariant() }
  },
  @{ Name = $envValues['CALLBACK_SIGNING_SECRET_NAME']; Setting = 'CALLBACK_SIGNING_SECRET'
    # A Standard Webhooks secret: whsec_ and the base64 of 32 random bytes.
    New = { 'whsec_' + [Convert]::ToBase64String((New-RandomBytes)) }
  }
)

# 1. Which secrets exist? A failure to list is retried, never taken for "missing".
$ids = @()
for ($n = 1; ; $n++) {
  $ids = az keyvault secret list --subscription $subscription --vault-name $vault --query '[].id' --output tsv
  if ($LASTEXITCODE -eq 0) { break }
  if ($n -ge $attempts) {
    Die "could not list the secrets of Key Vault $vault after $attempts attempts. Is az logged in as the principal azd deploys with (it gets Key Vault Secrets Officer on the vault)? Then run ``azd hooks run postprovision``."
  }
  Say "cannot list the secrets of $vault yet (attempt $n of $attempts; a new role assignment can take minutes); retrying in ${delay}s"
  Start-Sleep -Seconds $delay
}

$created = $false
foreach ($secret in $secrets) {
  $name = $secret.Name
  if (@($ids | Where-Object { "$_".Trim().EndsWith("/secrets/$name") }).Count -gt 0) {
    Say "secret $name exists in Key Vault $vault; kept as it is."
    continue
  }
  # In a file az reads: never on a command line.
  $valueFile = New-TemporaryFile
  try {
    [System.IO.File]::WriteAllText($valueFile.FullName, (& $secret.New))
    az keyvault secret set --subscription $subscription --vault-name $vault --name $name --file $valueFile.FullName --output none
    if ($LASTEXITCODE -ne 0) {
      Die "could not create secret $name in Key Vault $vault. If a secret of that name was deleted, recover it (``az keyvault secret recover --vault-name $vault --name $name``) or purge it, then run ``azd hooks run postprovision``."
    }
  }
  finally {
    Remove-Item -Path $valueFile.FullName -ErrorAction SilentlyContinue
  }
  $created = $true
  Say "created secret $name in Key Vault $vault (32 random bytes)."
}

# 2. Ask the platform to resolve the app's Key Vault references now, until every setting does.
$references = "/subscriptions/$subscription/resourceGroups/$group/providers/Microsoft.Web/sites/$app/config/configreferences/appsettings"
$settings = @($secrets | ForEach-Object { $_.Setting })
$pending = $settings
$unresolvedAtFirst = $false
for ($n = 1; ; $n++) {
  az rest --method post --url "$references/refresh?api-version=2022-03-01" --output none
  if ($LASTEXITCODE -ne 0) { Say "asking $app to resolve its Key Vault references failed; checking anyway" }
  $still = @()
  foreach ($setting in $pending) {
    $status = az rest --method get --url "$references/${setting}?api-version=2022-03-01" --query properties.status --output tsv
    $status = if ($LASTEXITCODE -eq 0 -and $status) { "$status".Trim() } else { 'unknown' }
    if ($status -eq 'Resolved') { continue }
    $still += $setting
    if ($n -eq 1) { $unresolvedAtFirst = $true }
    if ($n -ge $attempts) {
      Die "$setting of $app does not resolve (status $status) after $attempts attempts, and the app needs it. Check that its identity has Key Vault Secrets User on $vault (a new role assignment can take minutes), then run ``azd hooks run postprovision``."
    }
    Say "$setting of $app not resolved yet (status $status; attempt $n of $attempts); retrying in ${delay}s"
  }
  $pending = $still
  if ($pending.Count -eq 0) { break }
  Start-Sleep -Seconds $delay
}
Say "the Key Vault references of $app resolve: $($settings -join ' ')."

# 3. Environment variables are read when an instance starts.
if ($created -or $unresolvedAtFirst) {
  az functionapp restart --subscription $subscription --resource-group $group --name $app --output none
  if ($LASTEXITCODE -eq 0) { Say "restarted $app so that running instances read the secrets." }
  else { Say "could not restart $app; if it was running, restart it: az functionapp restart --resource-group $group --name $app" }
}
