// Log Analytics + workspace-based Application Insights with local (instrumentation key) auth off:
// telemetry is accepted only from an Entra identity holding Monitoring Metrics Publisher.

import { principal, stringMap } from '../types.bicep'

param logAnalyticsName string
param applicationInsightsName string
param location string
param tags stringMap = {}

@description('Who gets the roles.')
param principals principal[] = []

@description('Built-in role definition GUIDs (infra/roles.json) each principal gets here.')
param roleDefinitionIds string[] = []

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

// One assignment per (principal, role); max(…, 1) keeps the division defined for an empty list.
var roleCount = max(length(roleDefinitionIds), 1)

resource assignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for i in range(0, length(principals) * length(roleDefinitionIds)): {
    name: guid(applicationInsights.id, principals[i / roleCount].principalId, roleDefinitionIds[i % roleCount])
    scope: applicationInsights
    properties: {
      principalId: principals[i / roleCount].principalId
      principalType: principals[i / roleCount].principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds[i % roleCount])
    }
  }
]

output applicationInsightsName string = applicationInsights.name
output connectionString string = applicationInsights.properties.ConnectionString
