// Key mode only: a Key Vault in RBAC mode holding the Azure OpenAI API key. The app reads it through
// a Key Vault reference resolved with its user-assigned identity, which may read this one secret.
// The key never passes through a parameter or an output when this deployment created the account:
// it is read here with listKeys().

import { principal, stringMap } from '../types.bicep'

param name string
param location string
param tags stringMap = {}

param secretName string = 'azure-openai-api-key'

@description('The Azure OpenAI account created by this deployment, whose key is stored; empty when the key is given.')
param openAiAccountName string = ''

@secure()
@description('The key of an existing Azure OpenAI endpoint; used when openAiAccountName is empty.')
param openAiApiKey string = ''

@description('Who gets the roles.')
param principals principal[] = []

@description('Built-in role definition GUIDs (infra/roles.json) each principal gets on the secret.')
param roleDefinitionIds string[] = []

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
  }
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = if (!empty(openAiAccountName)) {
  name: empty(openAiAccountName) ? 'unused' : openAiAccountName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: secretName
  properties: {
    value: empty(openAiAccountName) ? openAiApiKey : openAi!.listKeys().key1
  }
}

// One assignment per (principal, role); max(…, 1) keeps the division defined for an empty list.
var roleCount = max(length(roleDefinitionIds), 1)

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for i in range(0, length(principals) * length(roleDefinitionIds)): {
    name: guid(secret.id, principals[i / roleCount].principalId, roleDefinitionIds[i % roleCount])
    scope: secret
    properties: {
      principalId: principals[i / roleCount].principalId
      principalType: principals[i / roleCount].principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds[i % roleCount])
    }
  }
]

output name string = vault.name
// Versionless, so a rotated key is picked up without redeploying.
output secretUri string = secret.properties.secretUri
