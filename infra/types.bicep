// Types shared by main.bicep and the modules: compile-time imports, nothing here is deployed.

@export()
@description('Someone who gets roles.')
type principal = {
  @description('Object id. For the app\'s identity it is known only once the identity exists.')
  principalId: string

  principalType: 'User' | 'ServicePrincipal'
}

@export()
@description('Names to string values: resource tags, app settings.')
type stringMap = { *: string }

@export()
@description('A built-in role given to someone.')
type roleGrant = {
  principal: principal

  @description('Built-in role definition GUID (infra/roles.json).')
  roleDefinitionId: string
}
