// An Azure OpenAI account with a custom subdomain (required for Entra ID tokens) and one image model
// deployment. Key auth stays off unless the app is deployed in key mode.

import { principal, stringMap } from '../types.bicep'

param name string
param location string
param tags stringMap = {}

param disableLocalAuth bool

param deploymentName string
param modelName string
param modelVersion string
param skuName string
param capacity int

@description('Who gets the roles.')
param principals principal[] = []

@description('Built-in role definition GUIDs (infra/roles.json) each principal gets here.')
param roleDefinitionIds string[] = []

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: { name: 'S0' }
  properties: {
    customSubDomainName: name
    disableLocalAuth: disableLocalAuth
    publicNetworkAccess: 'Enabled'
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: account
  name: deploymentName
  sku: {
    name: skuName
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

// One assignment per (principal, role); max(…, 1) keeps the division defined for an empty list.
var roleCount = max(length(roleDefinitionIds), 1)

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for i in range(0, length(principals) * length(roleDefinitionIds)): {
    name: guid(account.id, principals[i / roleCount].principalId, roleDefinitionIds[i % roleCount])
    scope: account
    properties: {
      principalId: principals[i / roleCount].principalId
      principalType: principals[i / roleCount].principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds[i % roleCount])
    }
  }
]

output name string = account.name
output endpoint string = account.properties.endpoint
output deploymentName string = deployment.name
