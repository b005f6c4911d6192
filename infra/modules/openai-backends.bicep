// The extra Azure OpenAI backends (AZURE_OPENAI_EXTRA_BACKENDS) beyond the main account's own
// deployments: existing deployments in any resource group or subscription, whose accounts get the
// roles here (from a deployment in the account's own resource group), and new deployments in new
// accounts, one per region (Azure OpenAI quota is per region). New deployments in the main account
// are made by main.bicep with its own. The output is what the app reads as AZURE_OPENAI_BACKENDS,
// every extra backend in the order given.

targetScope = 'subscription'

import { openAiBackendSetting, openAiDeployment, openAiExtraBackend, principal, stringMap } from '../types.bicep'

param backends openAiExtraBackend[]

@description('Where each backend lives, index for index: existing, main (the account main.bicep creates) or regional.')
param homes ('existing' | 'main' | 'regional')[]

@description('The new deployment each backend stands for, index for index (ignored for existing ones).')
param newDeployments openAiDeployment[]

@description('The resource group new accounts go to.')
param resourceGroupName string

@description('New accounts are named <prefix>-<region>.')
param accountNamePrefix string

param tags stringMap = {}

@description('Who gets the roles on every account.')
param principals principal[]

@description('Built-in role definition GUIDs (infra/roles.json) each principal gets on every account.')
param roleDefinitionIds string[]

var indexes = range(0, length(backends))

// /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.CognitiveServices/accounts/<name>
func isAccountId(id string) bool =>
  length(split(id, '/')) == 9 && toLower(join(
    concat(take(split(id, '/'), 2), take(skip(split(id, '/'), 3), 1), take(skip(split(id, '/'), 5), 3)),
    '/'
  )) == '/subscriptions/resourcegroups/providers/microsoft.cognitiveservices/accounts'

var accountIds = [
  for (backend, i) in backends: homes[i] != 'existing'
    ? ''
    : isAccountId(backend.?accountId ?? '')
        ? toLower(backend.?accountId ?? '')
        : fail('AZURE_OPENAI_EXTRA_BACKENDS[${i}].accountId must be the resource id of an Azure OpenAI account, /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.CognitiveServices/accounts/<name>; it is \'${backend.?accountId ?? ''}\'.')
]
// One roles module per account, however many of its deployments are listed.
var existingAccounts = union(filter(accountIds, id => !empty(id)), [])
var regions = union(map(filter(indexes, i => homes[i] == 'regional'), i => backends[i].?location ?? ''), [])

module access 'openai-access.bicep' = [
  for (id, j) in existingAccounts: {
    name: 'openai-access-${uniqueString(deployment().name, id)}'
    scope: resourceGroup(split(id, '/')[2], split(id, '/')[4])
    params: {
      accountName: last(split(id, '/'))
      principals: principals
      roleDefinitionIds: roleDefinitionIds
    }
  }
]

module regional 'openai.bicep' = [
  for region in regions: {
    name: 'openai-${region}'
    scope: resourceGroup(resourceGroupName)
    params: {
      name: '${accountNamePrefix}-${region}'
      location: region
      tags: tags
      disableLocalAuth: true
      deployments: map(
        filter(indexes, i => homes[i] == 'regional' && backends[i].?location == region),
        i => newDeployments[i]
      )
      principals: principals
      roleDefinitionIds: roleDefinitionIds
    }
  }
]

// What the app needs of each backend, without the endpoint (known once deployed); unset fields are
// left out, as AZURE_OPENAI_BACKENDS refuses nulls. Always the managed identity: keys of other
// accounts are not handled here.
var known = [
  for (backend, i) in backends: backend.?imagesPerMinute != null && backend.?requestsPerMinute != null
    ? fail('AZURE_OPENAI_EXTRA_BACKENDS[${i}] gives imagesPerMinute and requestsPerMinute: give the one its model\'s quota is counted in.')
    : toObject(
        filter(
          items({
            name: backend.?name
            deployment: homes[i] == 'existing' ? backend.?deployment : newDeployments[i].name
            model: backend.model
            auth: 'managed-identity'
            priority: backend.?priority
            weight: backend.?weight
            imagesPerMinute: backend.?imagesPerMinute
            requestsPerMinute: backend.?requestsPerMinute
          }),
          field => field.value != null
        ),
        field => field.key,
        field => field.value
      )
]
var accountIndexes = [for id in accountIds: max(indexOf(existingAccounts, id), 0)]
var regionIndexes = [for (backend, i) in backends: max(indexOf(regions, backend.?location ?? ''), 0)]

@description('AZURE_OPENAI_BACKENDS, as a list: a backend in the main account takes its endpoint from AZURE_OPENAI_ENDPOINT.')
output backends openAiBackendSetting[] = [
  for (entry, i) in known: homes[i] == 'main'
    ? entry
    : union(entry, {
        endpoint: homes[i] == 'existing'
          ? access[accountIndexes[i]].outputs.endpoint
          : regional[regionIndexes[i]].outputs.endpoint
      })
]
