// Scripts are ES modules, so strict: assigning an undeclared name throws.
export const options = { iterations: 1 };
export default function () {}
undeclaredName = 1;
