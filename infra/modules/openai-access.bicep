// Roles on an Azure OpenAI account that this deployment does not own (an extra backend's, in any
// resource group or subscription), deployed in that account's resource group, and its endpoint.

import { principal } from '../types.bicep'

param accountName string

@description('Who gets the roles.')
param principals principal[]

@description('Built-in role definition GUIDs (infra/roles.json) each principal gets on the account.')
param roleDefinitionIds string[]

resource account 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = {
  name: accountName
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
      roleDefinitionId: subscriptionResourceId(
        'Microsoft.Authorization/roleDefinitions',
        roleDefinitionIds[i % roleCount]
      )
    }
  }
]

output endpoint string = account.properties.endpoint
