// `azd up` for imagegen-functions: a Flex Consumption Function App running as one user-assigned
// identity, two key-less storage accounts (Functions host + deployment package; the app's images),
// Azure OpenAI with an image model deployment (or an existing endpoint), Key Vault for key mode,
// Application Insights with Entra-only ingestion, and the Event Grid system topic on the images
// account. The Event Grid subscription is made after deploy by infra/hooks/postdeploy.sh.
//
// Names the code relies on (containers, queue, the inbox function) are defined once below and
// checked against the code by test/infra.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region for everything except Azure OpenAI.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the deploying user or service principal; gets data access for local runs. Empty: none.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal'])
@description('What principalId is: a user (azd up from a laptop) or a service principal (a pipeline).')
param principalType string = 'User'

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

@allowed(['gpt-image-2', 'gpt-image-1.5', 'gpt-image-1', 'gpt-image-1-mini'])
@description('The image model to deploy (or that the existing endpoint serves).')
param openAiModelName string = 'gpt-image-2'

@description('Model version of the deployment; check the region\'s model availability.')
param openAiModelVersion string = '2026-04-21'

@description('Deployment name; empty means the model name.')
param openAiDeploymentName string = ''

@description('Deployment SKU: GlobalStandard, DataZoneStandard or Standard, as the model and region allow.')
param openAiDeploymentSkuName string = 'GlobalStandard'

@minValue(1)
@description('Deployment capacity (quota units for the model).')
param openAiDeploymentCapacity int = 1

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

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
  deadLetters: 'eventgrid-deadletters'
  deploymentPackage: 'app-package'
}
var appContainers = [storageNames.images, storageNames.inbox, storageNames.outputs, storageNames.jobs]
// The Event Grid-sourced blob trigger on the inbox container; postdeploy.sh subscribes its webhook.
var inboxFunctionName = 'inbox-edit'
var eventSubscriptionName = 'inboxblobcreated'

var createOpenAi = empty(openAiEndpoint)
var keyMode = openAiAuth == 'key'
var deploymentName = empty(openAiDeploymentName) ? openAiModelName : openAiDeploymentName
var hasPrincipal = !empty(principalId)

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

var app = {
  principalId: identity.outputs.principalId
  principalType: 'ServicePrincipal'
}
var developer = {
  principalId: principalId
  principalType: principalType
}
// Data access for local runs (never the Functions host's own storage, never the secret).
var appAndDeveloper = hasPrincipal ? [app, developer] : [app]

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
// account scope (user-delegation SAS keys can only be asked of the account), and the job queue.
module imagesStorage 'modules/storage.bicep' = {
  name: 'images-storage'
  scope: rg
  params: {
    name: 'stimg${resourceToken}'
    location: location
    tags: tags
    containerNames: concat(appContainers, [storageNames.deadLetters])
    queueNames: [storageNames.jobsQueue]
    principals: appAndDeveloper
    accountRoleDefinitionIds: [
      roles['Storage Blob Delegator']
      roles['Storage Queue Data Contributor']
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
    name: 'oai-${resourceToken}'
    location: openAiLocation
    tags: tags
    disableLocalAuth: !keyMode
    deploymentName: deploymentName
    modelName: openAiModelName
    modelVersion: openAiModelVersion
    skuName: openAiDeploymentSkuName
    capacity: openAiDeploymentCapacity
    principals: appAndDeveloper
    roleDefinitionIds: [roles['Cognitive Services OpenAI User']]
  }
}

module keyVault 'modules/key-vault.bicep' = if (keyMode) {
  name: 'key-vault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    openAiAccountName: createOpenAi ? openAi!.outputs.name : ''
    openAiApiKey: openAiApiKey
    principals: [app]
    roleDefinitionIds: [roles['Key Vault Secrets User']]
  }
}

module eventGrid 'modules/event-grid.bicep' = {
  name: 'event-grid'
  scope: rg
  params: {
    name: 'evgt-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: imagesStorage.outputs.name
    deadLetterContainerName: storageNames.deadLetters
    deadLetterRoleDefinitionId: roles['Storage Blob Data Contributor']
  }
}

var resolvedOpenAiEndpoint = createOpenAi ? openAi!.outputs.endpoint : openAiEndpoint

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
  ImagesStorage__credential: 'managedidentity'
  ImagesStorage__clientId: identity.outputs.clientId
  IMAGES_CONTAINER: storageNames.images
  INBOX_CONTAINER: storageNames.inbox
  OUTPUTS_CONTAINER: storageNames.outputs
  JOBS_CONTAINER: storageNames.jobs
  JOBS_QUEUE: storageNames.jobsQueue
  AZURE_OPENAI_ENDPOINT: resolvedOpenAiEndpoint
  AZURE_OPENAI_DEPLOYMENTS: '${openAiModelName}=${deploymentName}'
  AZURE_OPENAI_DEFAULT_MODEL: openAiModelName
  AZURE_OPENAI_AUTH: openAiAuth
}
var keyModeAppSettings = {
  AZURE_OPENAI_API_KEY: '@Microsoft.KeyVault(SecretUri=${keyVault!.outputs.secretUri})'
}

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
    appSettings: keyMode ? union(baseAppSettings, keyModeAppSettings) : baseAppSettings
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
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
output IMAGES_CONTAINER string = storageNames.images
output INBOX_CONTAINER string = storageNames.inbox
output OUTPUTS_CONTAINER string = storageNames.outputs
output JOBS_CONTAINER string = storageNames.jobs
output JOBS_QUEUE string = storageNames.jobsQueue
output INBOX_FUNCTION_NAME string = inboxFunctionName
output EVENTGRID_SYSTEM_TOPIC_ID string = eventGrid.outputs.id
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output EVENTGRID_SUBSCRIPTION_NAME string = eventSubscriptionName
output EVENTGRID_DEADLETTER_CONTAINER string = storageNames.deadLetters
output AZURE_OPENAI_ENDPOINT string = resolvedOpenAiEndpoint
output AZURE_OPENAI_DEPLOYMENTS string = '${openAiModelName}=${deploymentName}'
output AZURE_OPENAI_DEFAULT_MODEL string = openAiModelName
output AZURE_OPENAI_AUTH string = openAiAuth
output AZURE_KEY_VAULT_NAME string = keyMode ? keyVault!.outputs.name : ''
