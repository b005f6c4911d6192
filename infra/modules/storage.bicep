// A storage account with shared-key access off (Entra identities only), its blob containers,
// queues and tables, and role assignments at account or container scope. Used twice: once for the Functions
// host (AzureWebJobsStorage + the deployment package), once for the app's images.

import { principal, stringMap } from '../types.bicep'

param name string
param location string
param tags stringMap = {}

param containerNames string[] = []
param queueNames string[] = []
param tableNames string[] = []

@description('Who gets the roles below.')
param principals principal[] = []

@description('Built-in role definition GUIDs (infra/roles.json) each principal gets on the whole account.')
param accountRoleDefinitionIds string[] = []

@description('Built-in role definition GUIDs each principal gets on each of roleContainers, and nowhere else.')
param containerRoleDefinitionIds string[] = []
param roleContainers string[] = []

// One assignment per (principal, role) and per (principal, container, role): the loops below run
// over index ranges because Bicep loops are single-level. The max(…, 1) only keeps the divisions
// defined when a list is empty (the loop is empty then).
var accountRoleCount = max(length(accountRoleDefinitionIds), 1)
var containerRoleCount = max(length(containerRoleDefinitionIds), 1)
var perPrincipalContainerRoles = max(length(roleContainers) * length(containerRoleDefinitionIds), 1)

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    // Keep SAS links signed with user-delegation keys only; account-key SAS is impossible anyway.
    defaultToOAuthAuthentication: true
    dnsEndpointType: 'Standard'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      // Clients download images through SAS links from anywhere; Event Grid is a trusted service.
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: { publicAccess: 'None' }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

resource accountAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for i in range(0, length(principals) * length(accountRoleDefinitionIds)): {
    name: guid(account.id, principals[i / accountRoleCount].principalId, accountRoleDefinitionIds[i % accountRoleCount])
    scope: account
    properties: {
      principalId: principals[i / accountRoleCount].principalId
      principalType: principals[i / accountRoleCount].principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', accountRoleDefinitionIds[i % accountRoleCount])
    }
  }
]

resource assignedContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [
  for containerName in roleContainers: {
    parent: blobService
    name: containerName
  }
]

resource containerAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for i in range(0, length(principals) * length(roleContainers) * length(containerRoleDefinitionIds)): {
    name: guid(
      assignedContainers[(i % perPrincipalContainerRoles) / containerRoleCount].id,
      principals[i / perPrincipalContainerRoles].principalId,
      containerRoleDefinitionIds[i % containerRoleCount]
    )
    scope: assignedContainers[(i % perPrincipalContainerRoles) / containerRoleCount]
    properties: {
      principalId: principals[i / perPrincipalContainerRoles].principalId
      principalType: principals[i / perPrincipalContainerRoles].principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', containerRoleDefinitionIds[i % containerRoleCount])
    }
    dependsOn: [containers]
  }
]

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
