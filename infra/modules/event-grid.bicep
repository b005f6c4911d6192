// The Event Grid system topic for the images storage account. Its event subscription (inbox blob
// created -> the blob extension webhook) is created after the code is deployed, by
// infra/hooks/postdeploy.sh: the webhook needs the host's blobs_extension key and answers Event
// Grid's validation handshake only once the blob-trigger function is running.
//
// The topic has its own identity so that undeliverable events can be dead-lettered into a
// container of an account that refuses shared keys.

import { stringMap } from '../types.bicep'

param name string
param location string
param tags stringMap = {}

param storageAccountName string
param deadLetterContainerName string

@description('The role that lets the topic write dead letters (Storage Blob Data Contributor).')
param deadLetterRoleDefinitionId string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopic.id, deadLetterRoleDefinitionId)
  scope: deadLetterContainer
  properties: {
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', deadLetterRoleDefinitionId)
  }
}

output id string = systemTopic.id
output name string = systemTopic.name
