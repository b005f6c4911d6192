// An Azure OpenAI account with a custom subdomain (required for Entra ID tokens) and its image model
// deployments. Key auth stays off unless the app is deployed in key mode.

import { openAiDeployment, principal, stringMap } from '../types.bicep'

param name string
param location string
param tags stringMap = {}

param disableLocalAuth bool

@description('The deployments to create, the first being the one the app calls by default.')
param deployments openAiDeployment[]

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

// One at a time: Azure OpenAI refuses concurrent changes to the deployments of one account.
@batchSize(1)
resource modelDeployments 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = [
  for deployment in deployments: {
    parent: account
    name: deployment.name
    sku: {
      name: deployment.sku
      capacity: deployment.capacity
    }
    properties: {
      model: {
        format: 'OpenAI'
        name: deployment.model
        version: deployment.version
      }
    }
  }
]

// One assignment per (principal, role); max(…, 1) keeps the division defined for an empty list.
var roleCount = max(length(roleDefinitionIds), 1)

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for i in range(0, length(principals) * length(roleDefinitionIds)): {
    name: guid(account.id, principals[i / roleCount].principalId, roleDefinitionIds[i % roleCount])
    scope: account
    properties: {
      principalId: principals[i / roleCount].principalId
      principalType: principals[i / roleCount].principalType
      roleDefinitionId: subscriptionResourceId(
        'Microsoft.Authorization/roleDefinitions',
        roleDefinitionIds[i % roleCount]
      )
    }
  }
]

output name string = account.name
output endpoint string = account.properties.endpoint
