// `azd up` for imagegen-functions: a Flex Consumption Function App running as one user-assigned
// identity, two key-less storage accounts (Functions host + deployment package; the app's images),
// Azure OpenAI with an image model deployment (or an existing endpoint) and the extra backends the
// app spreads its load over, Key Vault (the generated secrets, and the API key in key mode),
// Application Insights with Entra-only ingestion, and the Event Grid system topic on the images
// account. The job-token and callback signing secrets are created once, after provisioning, by
// infra/hooks/ensure-secrets.sh; the Event Grid subscription after deploy by infra/hooks/postdeploy.sh.
//
// Names the code relies on (containers, queues, the inbox function, the secrets) are defined once
// below and checked against the code by test/infra.

targetScope = 'subscription'

import { openAiDeployment, openAiExtraBackend, principal, roleGrant } from 'types.bicep'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds every resource name.')
param environmentName string

// The regions that run Flex Consumption, as listed by the official azd Functions quickstart
// (Azure-Samples/functions-quickstart-typescript-azd), less its internal canary region. azd offers
// only these when it asks for a location.
@minLength(1)
@description('Region for everything except Azure OpenAI: one that runs Flex Consumption.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the deploying user or service principal; gets data access for local runs. Empty: none.')
param principalId string = ''

@description('What principalId is. azd fills it (AZURE_PRINCIPAL_TYPE) with the type of the signed-in principal: a user on a laptop, a service principal in a pipeline.')
param principalType 'User' | 'ServicePrincipal' = 'User'

@allowed(['managed-identity', 'key'])
@description('How the app authenticates to Azure OpenAI: its managed identity, or an API key kept in Key Vault.')
param openAiAuth string = 'managed-identity'

@description('An existing Azure OpenAI endpoint (https://<name>.openai.azure.com). Empty: create an account and deployment.')
param openAiEndpoint string = ''

@secure()
@description('API key of the existing endpoint; only with openAiEndpoint and openAiAuth=key.')
param openAiApiKey string = ''

@description('Region of the Azure OpenAI account: image models are offered in fewer regions than Functions.')
param openAiLocation string = location

// A plain string with allowed values (not the imageModel type): azd reads a parameter's type to
// prompt for it and to parse what it is given, and a $ref has none.
@allowed(['gpt-image-2', 'gpt-image-1.5', 'gpt-image-1', 'gpt-image-1-mini'])
@description('The image model to deploy (or that the existing endpoint serves).')
param openAiModelName string = 'gpt-image-2'

@description('Model version of the deployment; empty means the version modelVersions lists for the model.')
param openAiModelVersion string = ''

@description('Deployment name; empty means the model name.')
param openAiDeploymentName string = ''

@description('Deployment SKU: GlobalStandard, DataZoneStandard or Standard, as the model and region allow.')
param openAiDeploymentSkuName string = 'GlobalStandard'

@minValue(1)
@description('Deployment capacity (quota units for the model).')
param openAiDeploymentCapacity int = 1

@description('More deployments the app spreads its load over (AZURE_OPENAI_EXTRA_BACKENDS; README, "Several deployments per model"): existing ones in any resource group or subscription, whose accounts give the app\'s identity its role, or new ones in the account created here or in new accounts in other regions. The app reaches each with its managed identity.')
param openAiExtraBackends openAiExtraBackend[] = []

@description('Most instances the Function App scales out to (Flex Consumption allows 1 to 1000).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('JOB_TOKEN_PREVIOUS_SECRETS while the job-token secret is being rotated: a Key Vault reference to the retired version (README, Security). Empty: none.')
param retiredJobTokenReference string = ''

@allowed(['key', 'key+entra', 'entra'])
@description('Who may call the image routes (CALLER_AUTH): function keys; keys plus Entra ID sign-in through App Service Authentication; sign-in only.')
param callerAuth string = 'key'

@description('Client id of the app registration callers sign in to (docs/deploy.md, "Sign in for callers"); required unless callerAuth is key.')
param authClientId string = ''

@description('JSON list of spending limits per caller (BUDGETS, see the README); empty: none.')
param budgets string = ''

@description('JSON overrides of the price table (PRICE_TABLE, see the README); empty: the public list prices.')
param priceTable string = ''

var tags = { 'azd-env-name': environmentName }
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var roles = loadJsonContent('roles.json')

// The names the code reads through app settings (defaults in src/config.ts) and the hook uses.
var storageNames = {
  images: 'images'
  inbox: 'inbox'
  outputs: 'outputs'
  jobs: 'jobs'
  jobsQueue: 'image-jobs'
  callbacksQueue: 'image-callbacks'
  usageQueue: 'usage-retry'
  usageTable: 'usage'
  deadLetters: 'eventgrid-deadletters'
  deploymentPackage: 'app-package'
}
var appContainers = [storageNames.images, storageNames.inbox, storageNames.outputs, storageNames.jobs]
// The Event Grid-sourced blob trigger on the inbox container; postdeploy.sh subscribes its webhook.
var inboxFunctionName = 'inbox-edit'
var eventSubscriptionName = 'inboxblobcreated'
// The Key Vault secrets behind the app's Key Vault references: ensure-secrets.sh creates the
// job-token and callback signing secrets after provisioning; the deployment stores the API key (key mode).
var secretNames = {
  jobToken: 'job-token-secret'
  callbackSigning: 'callback-signing-secret'
  openAiApiKey: 'azure-openai-api-key'
}

// The version of each model that Azure OpenAI deploys as Global Standard, so that changing the
// model alone deploys (AZURE_OPENAI_MODEL_VERSION overrides it).
var modelVersions = {
  'gpt-image-2': '2026-04-21'
  'gpt-image-1.5': '2025-12-16'
  'gpt-image-1-mini': '2025-10-06'
  'gpt-image-1': '2025-04-15'
}

var createOpenAi = empty(openAiEndpoint)
var keyMode = openAiAuth == 'key'
var deploymentName = empty(openAiDeploymentName) ? openAiModelName : openAiDeploymentName
var modelVersion = empty(openAiModelVersion) ? modelVersions[openAiModelName] : openAiModelVersion
var hasPrincipal = !empty(principalId)

// The extra backends: where each lives (an existing account; the account created here, for a new
// one without a region of its own; a new account in its region) and the deployment a new one makes.
var extraBackendHomes = [
  for (backend, i) in openAiExtraBackends: backend.kind == 'existing'
    ? 'existing'
    : createOpenAi && contains(['', openAiLocation], backend.?location ?? '')
        ? 'main'
        : empty(backend.?location ?? '')
            ? fail('AZURE_OPENAI_EXTRA_BACKENDS[${i}] is a new deployment without a location, and there is no Azure OpenAI account created here to put it in (AZURE_OPENAI_EXISTING_ENDPOINT is set): give it a "location", the region of a new account for it.')
            : 'regional'
]
var extraDeployments = [
  for backend in openAiExtraBackends: {
    name: backend.?deployment ?? backend.model
    model: backend.model
    version: backend.?version ?? modelVersions[backend.model]
    sku: backend.?sku ?? 'GlobalStandard'
    capacity: backend.?capacity ?? 1
  }
]
// Each deployment once: two entries for one deployment would create it twice, or make the app count it twice.
var extraDeploymentKeys = [
  for (backend, i) in openAiExtraBackends: extraBackendHomes[i] == 'existing'
    ? '${toLower(backend.?accountId ?? '')}/${backend.?deployment ?? ''}'
    : '${extraBackendHomes[i] == 'main' ? 'main' : backend.?location ?? ''}/${extraDeployments[i].name}'
]
var deploymentKeys = concat(createOpenAi ? ['main/${deploymentName}'] : [], extraDeploymentKeys)
var uniqueExtraDeployments = length(union(deploymentKeys, [])) == length(deploymentKeys)
  ? extraDeployments
  : fail('AZURE_OPENAI_EXTRA_BACKENDS lists a deployment twice, or one that AZURE_OPENAI_DEPLOYMENT_NAME already names in the same account: give each new one its own "deployment" name.')
var mainAccountDeployments openAiDeployment[] = concat(
  [
    {
      name: deploymentName
      model: openAiModelName
      version: modelVersion
      sku: openAiDeploymentSkuName
      capacity: openAiDeploymentCapacity
    }
  ],
  map(filter(range(0, length(openAiExtraBackends)), i => extraBackendHomes[i] == 'main'), i => uniqueExtraDeployments[i])
)
// Sign-in headers are trusted only where App Service Authentication sets them: no registration, no trust.
var signInMessage = 'AZURE_CALLER_AUTH is ${callerAuth}, which needs the app registration callers sign in to: create it (docs/deploy.md, "Sign in for callers"), run `azd env set AZURE_AUTH_CLIENT_ID <client id>`, then `azd provision` again.'
var signInClientId = callerAuth != 'key' && empty(authClientId) ? fail(signInMessage) : authClientId

// Names known before the deployment, passed to the modules instead of their outputs so that
// what-if (azd provision --preview) can predict the resources named after them.
var imagesStorageName = 'stimg${resourceToken}'
var openAiName = 'oai-${resourceToken}'
var keyVaultName = 'kv-${resourceToken}'

// Key mode with an existing endpoint stores the key given for it. Without one the app would start
// with an empty secret: fail the deployment instead, saying what to do.
var missingKeyMessage = 'AZURE_OPENAI_AUTH is key and AZURE_OPENAI_EXISTING_ENDPOINT is set, but no key was given: run `azd env set-secret AZURE_OPENAI_EXISTING_API_KEY`, then `azd provision` again.'
var openAiApiKeyToStore = keyMode && !createOpenAi && empty(openAiApiKey) ? fail(missingKeyMessage) : openAiApiKey

// A retired job-token secret stays in Key Vault: the setting only points at its version. A secret
// itself would be kept in the deployment history, so anything else is refused.
var plainPreviousSecretMessage = 'JOB_TOKEN_PREVIOUS_SECRETS must be a Key Vault reference (@Microsoft.KeyVault(SecretUri=<the id of the retired version>)), not a secret: a parameter value is kept in the deployment history.'
var retiredJobTokenSetting = empty(retiredJobTokenReference) || startsWith(retiredJobTokenReference, '@Microsoft.KeyVault(')
  ? retiredJobTokenReference
  : fail(plainPreviousSecretMessage)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

var app principal = {
  principalId: identity.outputs.principalId
  principalType: 'ServicePrincipal'
}
var developer principal = {
  principalId: principalId
  principalType: principalType
}
// Data access for local runs (never the Functions host's own storage).
var appAndDeveloper = hasPrincipal ? [app, developer] : [app]
// The app reads its secrets through Key Vault references. The deployer creates the generated
// secrets in the postprovision hook and rotates them: Secrets Officer, as no built-in role writes
// secrets without reading them.
var keyVaultGrants roleGrant[] = concat(
  [{ principal: app, roleDefinitionId: roles['Key Vault Secrets User'] }],
  hasPrincipal ? [{ principal: developer, roleDefinitionId: roles['Key Vault Secrets Officer'] }] : []
)

// AzureWebJobsStorage and the deployment package: the host needs Blob Data Owner (leases, keys,
// package), queues and tables (its own bookkeeping). Only the app's identity gets in.
module hostStorage 'modules/storage.bicep' = {
  name: 'host-storage'
  scope: rg
  params: {
    name: 'stfn${resourceToken}'
    location: location
    tags: tags
    containerNames: [storageNames.deploymentPackage]
    principals: [app]
    accountRoleDefinitionIds: [
      roles['Storage Blob Data Owner']
      roles['Storage Queue Data Contributor']
      roles['Storage Table Data Contributor']
    ]
  }
}

// The app's images: blob data access only on the four containers it uses, the delegator role at
// account scope (user-delegation SAS keys can only be asked of the account), the job queue, and the
// usage table (usage records and budget counters; the account holds no other table).
module imagesStorage 'modules/storage.bicep' = {
  name: 'images-storage'
  scope: rg
  params: {
    name: imagesStorageName
    location: location
    tags: tags
    containerNames: concat(appContainers, [storageNames.deadLetters])
    queueNames: [storageNames.jobsQueue, storageNames.callbacksQueue, storageNames.usageQueue]
    tableNames: [storageNames.usageTable]
    principals: appAndDeveloper
    accountRoleDefinitionIds: [
      roles['Storage Blob Delegator']
      roles['Storage Queue Data Contributor']
      roles['Storage Table Data Contributor']
    ]
    roleContainers: appContainers
    containerRoleDefinitionIds: [roles['Storage Blob Data Contributor']]
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
    principals: [app]
    roleDefinitionIds: [roles['Monitoring Metrics Publisher']]
  }
}

module openAi 'modules/openai.bicep' = if (createOpenAi) {
  name: 'openai'
  scope: rg
  params: {
    name: openAiName
    location: openAiLocation
    tags: tags
    disableLocalAuth: !keyMode
    deployments: mainAccountDeployments
    principals: appAndDeveloper
    roleDefinitionIds: [roles['Cognitive Services OpenAI User']]
  }
}

module openAiExtras 'modules/openai-backends.bicep' = if (!empty(openAiExtraBackends)) {
  name: 'openai-backends'
  params: {
    backends: openAiExtraBackends
    homes: extraBackendHomes
    newDeployments: uniqueExtraDeployments
    resourceGroupName: rg.name
    accountNamePrefix: openAiName
    tags: tags
    principals: appAndDeveloper
    roleDefinitionIds: [roles['Cognitive Services OpenAI User']]
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    storeOpenAiApiKey: keyMode
    openAiApiKeySecretName: secretNames.openAiApiKey
    openAiAccountName: createOpenAi ? openAiName : ''
    openAiApiKey: openAiApiKeyToStore
    roleGrants: keyVaultGrants
  }
}

module eventGrid 'modules/event-grid.bicep' = {
  name: 'event-grid'
  scope: rg
  params: {
    name: 'evgt-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: imagesStorageName
    deadLetterContainerName: storageNames.deadLetters
    deadLetterRoleDefinitionId: roles['Storage Blob Data Contributor']
  }
}

var resolvedOpenAiEndpoint = createOpenAi ? openAi!.outputs.endpoint : openAiEndpoint
// JSON, as the app reads it; empty (no extra backend) when there is none.
var openAiBackendsSetting = empty(openAiExtraBackends) ? '' : string(openAiExtras!.outputs.backends)

// An app setting the platform fills from Key Vault with the app's identity (keyVaultReferenceIdentity
// in modules/function-app.bicep). No version, so it follows the secret's latest one; it ends with a
// slash, a versionless form App Service accepts (one report has the form without it keep serving
// an older version after a rotation).
func keyVaultReference(vaultUri string, secretName string) string => '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/${secretName}/)'

// Exactly what the app reads (src/config.ts APP_SETTING_NAMES) plus the settings the Functions host
// reads itself: AzureWebJobsStorage__*, the ImagesStorage trigger connection's __credential and
// __clientId, and Application Insights. test/infra checks this list against the code.
var baseAppSettings = {
  AzureWebJobsStorage__blobServiceUri: hostStorage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: hostStorage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: hostStorage.outputs.tableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  AZURE_CLIENT_ID: identity.outputs.clientId
  ImagesStorage__blobServiceUri: imagesStorage.outputs.blobEndpoint
  ImagesStorage__queueServiceUri: imagesStorage.outputs.queueEndpoint
  ImagesStorage__tableServiceUri: imagesStorage.outputs.tableEndpoint
  ImagesStorage__credential: 'managedidentity'
  ImagesStorage__clientId: identity.outputs.clientId
  IMAGES_CONTAINER: storageNames.images
  INBOX_CONTAINER: storageNames.inbox
  OUTPUTS_CONTAINER: storageNames.outputs
  JOBS_CONTAINER: storageNames.jobs
  JOBS_QUEUE: storageNames.jobsQueue
  CALLBACKS_QUEUE: storageNames.callbacksQueue
  USAGE_QUEUE: storageNames.usageQueue
  AZURE_OPENAI_ENDPOINT: resolvedOpenAiEndpoint
  AZURE_OPENAI_DEPLOYMENTS: '${openAiModelName}=${deploymentName}'
  AZURE_OPENAI_DEFAULT_MODEL: openAiModelName
  AZURE_OPENAI_AUTH: openAiAuth
  AZURE_OPENAI_BACKENDS: openAiBackendsSetting
  JOB_TOKEN_SECRET: keyVaultReference(keyVault.outputs.vaultUri, secretNames.jobToken)
  CALLBACK_SIGNING_SECRET: keyVaultReference(keyVault.outputs.vaultUri, secretNames.callbackSigning)
  USAGE_TABLE: storageNames.usageTable
  CALLER_AUTH: callerAuth
  BUDGETS: budgets
  PRICE_TABLE: priceTable
}
var keyModeAppSettings = keyMode ? { AZURE_OPENAI_API_KEY: keyVaultReference(keyVault.outputs.vaultUri, secretNames.openAiApiKey) } : {}
var rotationAppSettings = empty(retiredJobTokenSetting) ? {} : { JOB_TOKEN_PREVIOUS_SECRETS: retiredJobTokenSetting }

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: 'func-${resourceToken}'
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    deploymentContainerUrl: '${hostStorage.outputs.blobEndpoint}${storageNames.deploymentPackage}'
    appSettings: union(baseAppSettings, keyModeAppSettings, rotationAppSettings)
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    callerAuth: callerAuth
    authClientId: signInClientId
  }
}

// azd writes these to .azure/<env>/.env; the hooks and docs/deploy.md read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_STORAGE_ACCOUNT_NAME string = imagesStorage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = imagesStorage.outputs.id
output AZURE_STORAGE_BLOB_ENDPOINT string = imagesStorage.outputs.blobEndpoint
output AZURE_STORAGE_QUEUE_ENDPOINT string = imagesStorage.outputs.queueEndpoint
output AZURE_STORAGE_TABLE_ENDPOINT string = imagesStorage.outputs.tableEndpoint
output IMAGES_CONTAINER string = storageNames.images
output INBOX_CONTAINER string = storageNames.inbox
output OUTPUTS_CONTAINER string = storageNames.outputs
output JOBS_CONTAINER string = storageNames.jobs
output JOBS_QUEUE string = storageNames.jobsQueue
output CALLBACKS_QUEUE string = storageNames.callbacksQueue
output USAGE_QUEUE string = storageNames.usageQueue
output INBOX_FUNCTION_NAME string = inboxFunctionName
output EVENTGRID_SYSTEM_TOPIC_ID string = eventGrid.outputs.id
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output EVENTGRID_SUBSCRIPTION_NAME string = eventSubscriptionName
output EVENTGRID_DEADLETTER_CONTAINER string = storageNames.deadLetters
output AZURE_OPENAI_ENDPOINT string = resolvedOpenAiEndpoint
output AZURE_OPENAI_DEPLOYMENTS string = '${openAiModelName}=${deploymentName}'
output AZURE_OPENAI_DEFAULT_MODEL string = openAiModelName
output AZURE_OPENAI_AUTH string = openAiAuth
output AZURE_OPENAI_BACKENDS string = openAiBackendsSetting
output USAGE_TABLE string = storageNames.usageTable
output AZURE_CALLER_AUTH string = callerAuth
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output JOB_TOKEN_SECRET_NAME string = secretNames.jobToken
output CALLBACK_SIGNING_SECRET_NAME string = secretNames.callbackSigning
