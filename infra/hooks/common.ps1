# Dot-sourced by every azd hook script after it sets $HookName: the checks they all make before
# touching Azure (the twin of common.sh; keep the two in step).

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

function Say([string]$Message) { Write-Host "${HookName}: $Message" }
# Plain text on stderr: Write-Error would wrap and colour the message, and azd shows it as is.
function Die([string]$Message) {
  [Console]::Error.WriteLine("${HookName}: error: $Message")
  exit 1
}

# The named azd environment values (Bicep outputs or azd built-ins), by name; stops unless each is set.
function Get-AzdValues([string[]]$Names) {
  $values = @{}
  foreach ($name in $Names) {
    $value = [Environment]::GetEnvironmentVariable($name)
    if ([string]::IsNullOrWhiteSpace($value)) { Die "$name is not set; run ``azd provision`` first (it is a Bicep output)." }
    $values[$name] = $value
  }
  return $values
}

# Attempts and delay (seconds) from <prefix>_ATTEMPTS and <prefix>_RETRY_SECONDS, else the defaults.
function Get-RetrySettings([string]$Prefix, [int]$DefaultAttempts, [int]$DefaultDelay) {
  $attempts = [Environment]::GetEnvironmentVariable("${Prefix}_ATTEMPTS")
  $delay = [Environment]::GetEnvironmentVariable("${Prefix}_RETRY_SECONDS")
  if ("$attempts$delay" -notmatch '^[0-9]*$') { Die "${Prefix}_ATTEMPTS and ${Prefix}_RETRY_SECONDS must be whole numbers." }
  return @(
    $(if ($attempts) { [int]$attempts } else { $DefaultAttempts }),
    $(if ($delay) { [int]$delay } else { $DefaultDelay })
  )
}

# azd's own login is not shared with az, so a missing `az login` is the usual first failure.
function Assert-AzLogin([string]$Subscription) {
  if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Die 'the Azure CLI (az) is required: https://learn.microsoft.com/cli/azure/install-azure-cli'
  }
  az account show --subscription $Subscription --output none
  if ($LASTEXITCODE -ne 0) { Die "the Azure CLI is not logged in to subscription $Subscription; run ``az login``." }
}
