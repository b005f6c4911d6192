// The one user-assigned identity the Function App runs as: storage, Azure OpenAI, Key Vault and
// Application Insights all authorize it, so no connection string or key lives in app settings.

import { stringMap } from '../types.bicep'

param name string
param location string
param tags stringMap = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
